"""How collectors talk to AWS: counted, retried clients that raise pipepulse errors.

``client(settings, service, source=..., calls=..., ...)`` (what ``Context.client`` calls) gives a
boto3 client whose every operation goes through ``call_with_retry``: transient failures (the
rule is ``pipepulse.retries.is_transient``) are retried ``AWS_REQUEST_ATTEMPTS`` times with the
``AWS_REQUESTS`` backoff, and the rest become pipepulse errors: AccessDenied ->
``PermissionError_`` naming the IAM action, missing credentials or an unknown region ->
``CollectorError`` saying what to set. botocore's own retries are off (``default_client_config``),
so each HTTP attempt is one counted call (``CallCounter``), retries show up in
``CallCounter.retries`` (and in ``collector_runs.details``), and ``CallCounter.cost`` prices
them (AWS bills Cost Explorer per request).

Every answer is checked before it counts (``check_answer``): botocore turns a cut-off or
malformed 200 body into ``{}`` without raising, which a collector would take for an empty last
page (and move its watermark past everything it never read). An answer must hold its
operation's required members (botocore's service model), the list an operation pages over
(botocore's paginator model) as a list, a page token that is a non-empty string when present,
top-level members of their declared types, and a count equal to the list where the API gives
one (``ReturnSize``). A failed check is an ``InvalidAnswerError`` naming service, operation and
page: retried like a 5xx, then it fails the pass with the watermark unchanged.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from botocore import exceptions as bx
from botocore.config import Config

from pipepulse import retries
from pipepulse.errors import (
    CollectorError,
    InvalidAnswerError,
    PermissionError_,
    PipepulseError,
    TransientError,
)
from pipepulse.settings import Prices, Settings

__all__ = [
    "PRICE_PER_CALL",
    "CallCounter",
    "RetryingClient",
    "call_with_retry",
    "check_answer",
    "classify_error",
    "client",
    "default_client_config",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# endpoint prefix -> IAM action prefix, where they differ
IAM_PREFIX = {"monitoring": "cloudwatch"}
_sleep = time.sleep  # tests may replace
_jitter = random.random

# What one request of an operation costs, as (Prices attribute, divisor). Operations not listed
# are free (most describe/list calls). GetMetricData is billed per metric requested, which the
# collector adds itself with ``CallCounter.add_billed``.
PRICE_PER_CALL: dict[str, tuple[str, float]] = {
    "ce:GetCostAndUsage": ("ce_request", 1.0),
    "ce:GetCostForecast": ("ce_request", 1.0),
    "ce:GetDimensionValues": ("ce_request", 1.0),
    "ce:GetTags": ("ce_request", 1.0),
}


def default_client_config(*, read_timeout: float = 60.0, connect_timeout: float = 5.0) -> Config:
    """botocore Config: our retries instead of botocore's, bounded timeouts."""
    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=connect_timeout, read_timeout=read_timeout)


def classify_error(exc: BaseException, *, source: str, service: str, operation: str) -> PipepulseError:
    """The pipepulse error for a failed AWS request (TransientError when worth retrying)."""
    action = f"{IAM_PREFIX.get(service, service)}:{operation}"
    if isinstance(exc, PipepulseError):
        return exc
    if retries.is_transient(exc):
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return TransientError(source, f"{operation} failed with {err.get('Code') or status} (transient): {err.get('Message') or exc}")
        return TransientError(source, f"{operation}: {exc}")
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in retries.DENIED_CODES or status == 403 and code not in retries.BAD_CREDENTIAL_CODES:
            return PermissionError_(source, f"{operation} denied: grant {action} to the collector's IAM role or user ({message})")
        if code in retries.BAD_CREDENTIAL_CODES:
            return CollectorError(source, f"{operation}: AWS rejected the credentials ({code}: {message}); check AWS_PROFILE or the access keys")
        return CollectorError(source, f"{operation} failed: {code}: {message}")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CollectorError(
            source, f"no AWS credentials for {operation}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance/task role"
        )
    if isinstance(exc, bx.NoRegionError | bx.InvalidRegionError):
        return CollectorError(source, f"{operation}: no valid AWS region; set [aws] region or PIPEPULSE_AWS_REGION ({exc})")
    if isinstance(exc, bx.ParamValidationError):
        return CollectorError(source, f"{operation}: invalid request built by the collector: {exc}")
    if isinstance(exc, bx.BotoCoreError):
        return CollectorError(source, f"{operation}: {exc}")
    return CollectorError(source, f"{operation}: unexpected {type(exc).__name__}: {exc}")


def call_with_retry(
    fn: Callable[[], T], *, source: str, service: str, operation: str, calls: CallCounter | None = None
) -> T:
    """Run one AWS request, retrying transient failures with exponential backoff and jitter."""
    attempts = retries.AWS_REQUEST_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified right here
            err = classify_error(exc, source=source, service=service, operation=operation)
            if not isinstance(err, TransientError) or attempt == attempts:
                if isinstance(err, TransientError):
                    err = type(err)(source, f"{err.detail} (gave up after {attempt} attempts)")
                raise err from exc
            if calls is not None:
                calls.retries[f"{service}:{operation}"] += 1
            delay = retries.AWS_REQUESTS.delay(attempt, _jitter())
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


# botocore shape type -> the Python types its parser yields
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (datetime,),
}


def _names(value: Any) -> list[str]:
    """Plain member names of a paginator-model entry (JMESPath expressions are left out)."""
    items = value if isinstance(value, list) else [value] if value else []
    return [v for v in items if isinstance(v, str) and v.isidentifier()]


def check_answer(answer: Any, operation_model: Any, pager: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with a parsed answer of ``operation_model`` (empty when it is valid)."""
    if not isinstance(answer, dict):
        return [f"the answer is a {type(answer).__name__}, not an object"]
    shape = operation_model.output_shape
    if shape is None:
        return []
    members = shape.members
    present = [m for m in members if m in answer]
    problems: list[str] = []
    if members and not present and not getattr(shape, "is_document_type", False):
        problems.append("the answer holds none of its members (an empty or unreadable body)")
    missing = [m for m in shape.required_members if m not in answer]
    if missing:
        problems.append(f"required member(s) missing: {', '.join(missing)}")
    if pager:
        results = _names(pager.get("result_key"))
        # S3-style listings (``more_results``) leave an empty list out; the rest always send it
        if results and "more_results" not in pager and results[0] not in answer and results[0] in members:
            problems.append(f"the paged list {results[0]!r} is missing")
        for token in _names(pager.get("output_token")):
            value = answer.get(token)
            if token in answer and not (isinstance(value, str) and value):
                problems.append(f"page token {token!r} is {value!r}, not a non-empty string")
    for name in present:
        value = answer[name]
        expected = _PY_TYPES.get(members[name].type_name)
        if value is None or expected is None:
            continue
        if not isinstance(value, expected) or (expected == (int,) and isinstance(value, bool)):
            problems.append(f"{name} is a {type(value).__name__}, expected {members[name].type_name}")
    if pager and isinstance(answer.get("ReturnSize"), int):
        results = _names(pager.get("result_key"))
        listed = answer.get(results[0]) if results else None
        if isinstance(listed, list) and len(listed) != answer["ReturnSize"]:
            problems.append(f"ReturnSize says {answer['ReturnSize']} but {results[0]} holds {len(listed)}")
    return problems


def _pager_models(raw: Any) -> dict[str, Any]:
    """The paginator model of a botocore client's service (operation -> config), or {}."""
    model = raw.meta.service_model
    try:
        loaded = raw._loader.load_service_model(model.service_name, "paginators-1", model.api_version)
    except Exception:  # noqa: BLE001 - a service without paginators
        return {}
    pagination = loaded.get("pagination", {}) if isinstance(loaded, dict) else {}
    return pagination if isinstance(pagination, dict) else {}


class RetryingClient:
    """A boto3 client whose operations retry transient failures and raise pipepulse errors."""

    def __init__(self, client: Any, *, source: str, calls: CallCounter) -> None:
        self._client = client
        self._source = source
        self._calls = calls
        self._service = client.meta.service_model.endpoint_prefix
        self.meta = client.meta
        self.exceptions = client.exceptions
        self._pagers = _pager_models(client)
        self._pages: Counter[str] = Counter()  # page number of the last call per operation

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name not in self._client.meta.method_to_api_mapping:
            return attr
        operation = self._client.meta.method_to_api_mapping[name]

        pager = self._pagers.get(operation)
        model = self._client.meta.service_model.operation_model(operation)

        def call(*args: Any, **kwargs: Any) -> Any:
            tokens = _names(pager.get("input_token")) if pager else []
            self._pages[operation] = self._pages[operation] + 1 if any(kwargs.get(t) for t in tokens) else 1
            page = self._pages[operation]

            def checked() -> Any:
                answer = attr(*args, **kwargs)
                problems = check_answer(answer, model, pager)
                if problems:
                    where = f"page {page} of " if pager else ""
                    raise InvalidAnswerError(
                        self._source,
                        f"invalid answer to {where}{self._service}:{operation}: {'; '.join(problems)} "
                        "(a cut-off or malformed body; nothing of this pass is stored and the watermark stays)",
                    )
                return answer

            return call_with_retry(checked, source=self._source, service=self._service, operation=operation, calls=self._calls)

        return call

    def get_paginator(self, name: str) -> Any:
        paginator = self._client.get_paginator(name)
        paginator._method = getattr(self, name)  # pages go through the retrying call
        return paginator


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


def client(
    settings: Settings,
    service: str,
    *,
    source: str,
    calls: CallCounter,
    session_factory: Callable[[], Any],
    client_config: Config | None = None,
    **kwargs: Any,
) -> RetryingClient:
    """A boto3 client for ``service`` in the configured region: counted, retrying, mapped errors."""
    kwargs.setdefault("region_name", settings.aws_region)
    if settings.aws_endpoint_url and "endpoint_url" not in kwargs:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
    kwargs.setdefault("config", client_config if client_config is not None else default_client_config())
    try:
        session = session_factory()
        _check_region(session, service, kwargs["region_name"], source, kwargs.get("endpoint_url"))
        raw = session.client(service, **kwargs)
    except PipepulseError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrapped with a message
        raise classify_error(exc, source=source, service=service, operation="client setup") from exc
    return RetryingClient(calls.attach(raw), source=source, calls=calls)
