"""The one small interface every collector implements, and how its output is persisted.

A collector is an object with a ``name`` (the source it records under, e.g. ``"ce"``) and
``collect(ctx) -> Batch``. It reads its watermarks from ``ctx``, calls AWS through
``ctx.client(service)`` (which counts every HTTP attempt, because AWS bills per request), turns
raw answers into typed rows at the boundary, and returns them. It never writes to the database.

The runner (``collectors/runner.py``) then, in ONE transaction, calls ``persist(conn, name,
batch, now=...)`` (rows + watermarks together: nothing lost, nothing twice) and records the
``collector_runs`` row with ``ctx.calls`` and their price (``ctx.calls.cost(prices)``).

Extending: add ``collectors/<source>.py`` with a class that has ``name`` and ``collect``, and a
module function ``create(settings) -> Collector``; register the module in
``collectors.runner.SOURCES``. Return rows keyed by table name (``store.schema`` tables), built
from the typed rows below (``RunRow``, ``StepRow``, ``LogRow``) or plain dicts of column values.
Writes that are not plain upserts (replacing a range of days that a source restates, inserting a
forecast snapshot with its points, metric points whose series ids the database assigns) go in
``Batch.writes`` as functions of the connection, defined in ``store/<area>.py``.

Faults: every client from ``ctx.client`` retries transient errors itself (``TRANSIENT_CODES``,
5xx, timeouts and dropped connections; ``MAX_ATTEMPTS`` attempts with exponential backoff and
jitter from ``BACKOFF_BASE``/``BACKOFF_CAP``, which tests set to zero) and turns the rest into
pipepulse errors: AccessDenied -> ``PermissionError_`` naming the IAM action, missing
credentials / unknown region -> ``CollectorError`` saying what to set. botocore's own retries
are off (``client_config``), so each HTTP attempt is one counted call and retries show up in
``ctx.calls.retries`` (and in ``collector_runs.details``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection

from pipepulse.errors import CollectorError, PermissionError_, PipepulseError, TransientError
from pipepulse.settings import Prices, Settings

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_ATTEMPTS",
    "PRICE_PER_CALL",
    "TRANSIENT_CODES",
    "Batch",
    "CallCounter",
    "Collector",
    "Context",
    "LogRow",
    "RunRow",
    "StepRow",
    "call_with_retry",
    "classify_error",
    "default_client_config",
    "persist",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# ---- retry policy: the one place that decides what is transient -----------------------------
MAX_ATTEMPTS = 5  # attempts per request, first included
BACKOFF_BASE = 0.5  # seconds before the first retry; doubles each time (tests set 0)
BACKOFF_CAP = 20.0  # longest single wait
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",  # Cost Explorer throttles with this
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
BAD_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidSignatureException"}
)
# endpoint prefix -> IAM action prefix, where they differ
IAM_PREFIX = {"monitoring": "cloudwatch"}
_sleep = time.sleep  # tests may replace
_jitter = random.random


def default_client_config(*, read_timeout: float = 60.0, connect_timeout: float = 5.0) -> Any:
    """botocore Config: our retries instead of botocore's, bounded timeouts."""
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=connect_timeout, read_timeout=read_timeout)


def classify_error(exc: BaseException, *, source: str, service: str, operation: str) -> PipepulseError:
    """The pipepulse error for a failed AWS request (TransientError when worth retrying)."""
    from botocore import exceptions as bx

    action = f"{IAM_PREFIX.get(service, service)}:{operation}"
    if isinstance(exc, PipepulseError):
        return exc
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(source, f"{operation} failed with {code or status} (transient): {message}")
        if code in DENIED_CODES or status == 403 and code not in BAD_CREDENTIAL_CODES:
            return PermissionError_(source, f"{operation} denied: grant {action} to the collector's IAM role or user ({message})")
        if code in BAD_CREDENTIAL_CODES:
            return CollectorError(source, f"{operation}: AWS rejected the credentials ({code}: {message}); check AWS_PROFILE or the access keys")
        return CollectorError(source, f"{operation} failed: {code}: {message}")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CollectorError(
            source, f"no AWS credentials for {operation}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance/task role"
        )
    if isinstance(exc, bx.NoRegionError | bx.InvalidRegionError):
        return CollectorError(source, f"{operation}: no valid AWS region; set [aws] region or PIPEPULSE_AWS_REGION ({exc})")
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError | bx.ConnectionClosedError | bx.EndpointConnectionError):
        return TransientError(source, f"{operation}: {exc}")
    if isinstance(exc, bx.ParamValidationError):
        return CollectorError(source, f"{operation}: invalid request built by the collector: {exc}")
    if isinstance(exc, bx.BotoCoreError):
        return CollectorError(source, f"{operation}: {exc}")
    return CollectorError(source, f"{operation}: unexpected {type(exc).__name__}: {exc}")


def call_with_retry(
    fn: Callable[[], T], *, source: str, service: str, operation: str, calls: CallCounter | None = None
) -> T:
    """Run one AWS request, retrying transient failures with exponential backoff and jitter."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified right here
            err = classify_error(exc, source=source, service=service, operation=operation)
            if not isinstance(err, TransientError) or attempt == MAX_ATTEMPTS:
                if isinstance(err, TransientError):
                    err = TransientError(source, f"{err.detail} (gave up after {attempt} attempts)")
                raise err from exc
            if calls is not None:
                calls.retries[f"{service}:{operation}"] += 1
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * (0.5 + _jitter() / 2)
            log.info("retrying %s:%s after %s (attempt %d)", service, operation, err.detail, attempt, extra={"source": source})
            if delay > 0:
                _sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_region(session: Any, service: str, region: str, source: str, endpoint: str | None) -> None:
    """Refuse a region no AWS partition knows (only when talking to real AWS endpoints)."""
    core = getattr(session, "_session", session)
    if endpoint or core.get_config_variable("endpoint_url"):
        return
    known: set[str] = set()
    for partition in session.get_available_partitions():
        known.update(session.get_available_regions(service, partition_name=partition))
    if known and region not in known:
        raise CollectorError(source, f"unknown AWS region {region!r} for {service}; set [aws] region (e.g. us-east-1)")


class RetryingClient:
    """A boto3 client whose operations retry transient failures and raise pipepulse errors."""

    def __init__(self, client: Any, *, source: str, calls: CallCounter) -> None:
        self._client = client
        self._source = source
        self._calls = calls
        self._service = client.meta.service_model.endpoint_prefix
        self.meta = client.meta
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name not in self._client.meta.method_to_api_mapping:
            return attr
        operation = self._client.meta.method_to_api_mapping[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            return call_with_retry(
                lambda: attr(*args, **kwargs), source=self._source, service=self._service, operation=operation, calls=self._calls
            )

        return call

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        paginator._method = getattr(self, name)  # pages go through the retrying call
        return paginator

# What one request of an operation costs, as (Prices attribute, divisor). Operations not listed
# are free (most describe/list calls). GetMetricData is billed per metric requested, which the
# collector adds itself with ``CallCounter.add_billed``.
PRICE_PER_CALL: dict[str, tuple[str, float]] = {
    "ce:GetCostAndUsage": ("ce_request", 1.0),
    "ce:GetCostForecast": ("ce_request", 1.0),
    "ce:GetDimensionValues": ("ce_request", 1.0),
    "ce:GetTags": ("ce_request", 1.0),
}


@dataclass
class CallCounter:
    """AWS requests made in one pass, per ``service:Operation`` (every HTTP attempt counts)."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)  # retried attempts per operation
    billed_usd: float = 0.0  # extra charges not tied to a request count (e.g. metrics requested)

    def add(self, operation: str, n: int = 1) -> None:
        self.calls[operation] += n

    def add_billed(self, usd: float) -> None:
        self.billed_usd += usd

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def cost(self, prices: Prices) -> float:
        """The price of the calls made, at the configured list prices."""
        usd = self.billed_usd
        for op, n in self.calls.items():
            if op in PRICE_PER_CALL:
                attr, div = PRICE_PER_CALL[op]
                usd += n * getattr(prices, attr) / div
        return usd

    def attach(self, client: Any) -> Any:
        """Count every request ``client`` sends (retries included); returns the client."""
        service = client.meta.service_model.endpoint_prefix

        def _count(event_name: str = "", **_: Any) -> None:
            # event_name is "before-send.<service id>.<Operation>"; fires once per HTTP attempt
            self.add(f"{service}:{event_name.rsplit('.', 1)[-1]}")

        client.meta.events.register("before-send", _count)
        return client


@dataclass
class Context:
    """What a collector gets for one pass."""

    settings: Settings
    session_factory: Callable[[], Any]  # -> boto3.Session
    now: datetime
    watermarks: Mapping[str, str] = field(default_factory=dict)  # key -> value, for this source
    calls: CallCounter = field(default_factory=CallCounter)
    client_config: Any = None  # botocore Config (retries, timeouts) the runner wants
    source: str = ""  # the collector's name, for error messages
    options: Mapping[str, Any] = field(default_factory=dict)  # the source's [collectors.<name>] table
    # Run a read function of ``store/`` on a connection: ``ctx.read(store.metrics.known_series)``.
    reader: Callable[[Callable[[Connection], Any]], Any] | None = None

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` in the configured region: counted, retrying, mapped errors."""
        kwargs.setdefault("region_name", self.settings.aws_region)
        if self.settings.aws_endpoint_url and "endpoint_url" not in kwargs:
            kwargs["endpoint_url"] = self.settings.aws_endpoint_url
        kwargs.setdefault("config", self.client_config if self.client_config is not None else default_client_config())
        source = self.source or service
        try:
            session = self.session_factory()
            _check_region(session, service, kwargs["region_name"], source, kwargs.get("endpoint_url"))
            raw = session.client(service, **kwargs)
        except PipepulseError:
            raise
        except Exception as exc:  # noqa: BLE001 - wrapped with a message
            raise classify_error(exc, source=source, service=service, operation="client setup") from exc
        return RetryingClient(self.calls.attach(raw), source=source, calls=self.calls)

    def watermark(self, key: str = "", default: str | None = None) -> str | None:
        """The committed watermark ``key`` of this source (as of the pass's start)."""
        return self.watermarks.get(key, default)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run a ``store/`` read function on a connection of the pass's database."""
        if self.reader is None:
            raise CollectorError(self.source, "this collector needs the database but the context has none")
        return self.reader(fn)


@dataclass
class Batch:
    """What one pass produced: rows per table (upserted), new watermarks, extra writes."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)  # key -> value, for this source
    # Writes that are not plain upserts, run first in the same transaction; each returns the
    # number of rows it changed. Defined in store/<area>.py (SQL lives in store/ only).
    writes: list[Callable[[Connection], int]] = field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # for collector_runs.details

    @property
    def row_count(self) -> int:
        return sum(len(v) for v in self.rows.values())

    def add(self, table: str, row: Any) -> None:
        """Append a typed row (dataclass) or a dict of column values for ``table``."""
        if dataclasses.is_dataclass(row) and not isinstance(row, type):
            row = row.as_row() if hasattr(row, "as_row") else dataclasses.asdict(row)
        self.rows.setdefault(table, []).append(dict(row))


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One pipeline run, source-qualified id (``glue:<job>:<run id>``)."""

    run_id: str
    pipeline: str
    source: str
    status: str
    trigger: str = "schedule"
    attempt: int = 1
    scheduled_for: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    records_in: int | None = None
    records_out: int | None = None
    records_rejected: int | None = None
    bytes_in: int | None = None
    retries: int = 0
    error_type: str | None = None
    error_message: str | None = None
    correlation_id: str | None = None
    cost_usd: float | None = None
    account: str = ""
    region: str = ""

    def as_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        if row["duration_seconds"] is None and self.started_at and self.ended_at:
            row["duration_seconds"] = (self.ended_at - self.started_at).total_seconds()
        return row


@dataclass(frozen=True, kw_only=True)
class StepRow:
    """One attempt of one stage (state, step) of a run."""

    run_id: str
    stage: str
    attempt: int
    status: str
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    records_in: int | None = None
    records_out: int | None = None
    records_rejected: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    next_retry_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        if row["duration_seconds"] is None and self.started_at and self.ended_at:
            row["duration_seconds"] = (self.ended_at - self.started_at).total_seconds()
        return row


@dataclass(frozen=True, kw_only=True)
class LogRow:
    """One log event kept for a run's drill-down."""

    log_id: str
    run_id: str | None
    correlation_id: str | None
    ts: datetime
    level: str
    message: str
    stage: str | None = None
    log_group: str = ""
    log_stream: str = ""


class Collector(Protocol):
    name: str

    def collect(self, ctx: Context) -> Batch: ...


def persist(conn: Connection, source: str, batch: Batch, *, now: datetime) -> int:
    """Write a batch and its watermarks in the caller's transaction; returns rows changed."""
    from store.schema import metadata
    from store.state import set_watermark
    from store.writes import upsert

    changed = 0
    for write in batch.writes:
        changed += int(write(conn) or 0)
    for table_name, rows in batch.rows.items():
        if rows:
            changed += upsert(conn, metadata.tables[table_name], rows, now=now)
    for key, value in batch.watermarks.items():
        set_watermark(conn, source, value, key, now=now)
    return changed
