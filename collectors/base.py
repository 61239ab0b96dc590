"""The one shape of a collector: it reads a source and returns a typed ``Batch``; it never writes.

A collector is an object with

- ``name``: the source it records under (``"ce"``, ``"glue"`` ...);
- ``reads(ctx) -> Reads``: what it needs from the store besides its watermarks (the metric
  series already stored, the failed runs awaiting their logs, the cost stored before its
  window). The runner reads it *before* the pass and hands it in as ``ctx.stored``; most
  collectors need nothing (``NOTHING``);
- ``collect(ctx) -> Batch``: read the source (AWS through ``ctx.client(service)``, which counts,
  retries and maps errors; files; the ledger), turn raw answers into typed rows at the boundary,
  and return them with the new watermarks.

The runner (``collectors/runner.py``) then, in ONE transaction, writes the batch through
``store/`` (``runner.persist``: rows and watermarks together, nothing lost, nothing twice) and
records the pass in ``collector_runs`` with its API calls and their price. Raw boto3 answers
never leave the collector module.

A batch holds, each typed below: ``runs`` (``RunRow``), ``steps`` (``StepRow``), ``logs``
(``LogRow``), ``metrics`` (``MetricData``: series and points), ``costs`` (``CostDays``: the
rows that replace a source's cost for a range of days) and ``forecasts`` (``ForecastRow``).

Adding a collector: ``collectors/<source>.py`` with a ``Collector`` subclass and
``create(settings) -> Collector``, registered in ``collectors.runner.SOURCES`` (see
docs/architecture.md). A new kind of row: a dataclass here, a field on ``Batch`` and its write
in ``runner.persist``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from collectors.aws import CallCounter, RetryingClient, client
from pipepulse.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from botocore.config import Config

__all__ = [
    "NOTHING",
    "Batch",
    "Collector",
    "Context",
    "CostDays",
    "CostTotalQuery",
    "FailedRunsQuery",
    "ForecastRow",
    "InvocationRow",
    "LogRead",
    "LogRow",
    "MetricData",
    "MetricPoint",
    "Reads",
    "RunRow",
    "StepRow",
    "Stored",
]


# ---- what a collector may ask of the store, read by the runner before the pass ---------------


@dataclass(frozen=True, kw_only=True)
class FailedRunsQuery:
    """Failed or timed-out runs ended after ``ended_after`` that the logs collector has not read
    yet, whose end changed since it read them, or whose read was not ``complete`` (see
    ``LogRead``); runs never read first, then oldest end first, at most ``limit``."""

    ended_after: datetime | None = None
    limit: int = 1000


@dataclass(frozen=True, kw_only=True)
class CostTotalQuery:
    """The stored billed cost of ``source`` for ``start <= day < end``."""

    source: str
    start: date
    end: date


@dataclass(frozen=True, kw_only=True)
class Reads:
    """What a collector needs from the store for its next pass (``Collector.reads``)."""

    metric_series: bool = False  # the keys of every stored metric series
    failed_runs: FailedRunsQuery | None = None
    cost_total: CostTotalQuery | None = None


NOTHING = Reads()


@dataclass(frozen=True, kw_only=True)
class Stored:
    """The answers to a collector's ``Reads``, as the store held them when the pass began."""

    metric_series: frozenset[str] = frozenset()
    failed_runs: tuple[Mapping[str, Any], ...] = ()  # run_id, pipeline, source, correlation_id, started_at, ended_at, updated_at
    cost_total: float = 0.0


# ---- what one pass hands the runner ----------------------------------------------------------


@dataclass
class Context:
    """What a collector gets for one pass."""

    settings: Settings
    session_factory: Callable[[], Any]  # -> boto3.Session
    now: datetime
    watermarks: Mapping[str, str] = field(default_factory=dict)  # key -> value, for this source
    stored: Stored = field(default_factory=Stored)  # answers to ``reads``
    calls: CallCounter = field(default_factory=CallCounter)
    client_config: Config | None = None  # botocore Config (retries, timeouts) the runner wants
    source: str = ""  # the collector's name, for error messages
    options: Mapping[str, Any] = field(default_factory=dict)  # the source's [collectors.<name>] table
    # the target of this pass (collectors/accounts.py): ``settings.aws_region`` is its region and
    # ``session_factory`` gives its credentials; account is "" with the default credentials
    account: str = ""
    region: str = ""

    def client(self, service: str, **kwargs: Any) -> RetryingClient:
        """A boto3 client for ``service`` in the configured region: counted, retrying, mapped errors."""
        return client(self.settings, service, source=self.source or service, calls=self.calls,
                      session_factory=self.session_factory, client_config=self.client_config, **kwargs)

    def watermark(self, key: str = "", default: str | None = None) -> str | None:
        """The committed watermark ``key`` of this source (as of the pass's start)."""
        return self.watermarks.get(key, default)


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    """What a run and a step attempt both record: when, how many records, how it failed."""

    run_id: str  # source-qualified: ``glue:<job>:<run id>``
    status: str  # pipepulse.vocab
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None  # from the start and end when not given
    records_in: int | None = None
    records_out: int | None = None
    records_rejected: int | None = None
    error_type: str | None = None
    error_message: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The table's columns."""
        row = dataclasses.asdict(self)
        if row["duration_seconds"] is None and self.started_at and self.ended_at:
            row["duration_seconds"] = (self.ended_at - self.started_at).total_seconds()
        return row


@dataclass(frozen=True, kw_only=True)
class RunRow(_Attempt):
    """One pipeline run (``runs``)."""

    pipeline: str
    source: str
    trigger: str = "schedule"
    attempt: int = 1
    scheduled_for: datetime | None = None
    bytes_in: int | None = None
    retries: int = 0
    correlation_id: str | None = None
    cost_usd: float | None = None
    account: str = ""
    region: str = ""


@dataclass(frozen=True, kw_only=True)
class StepRow(_Attempt):
    """One attempt of one stage (state, step) of a run (``run_steps``)."""

    stage: str
    attempt: int
    next_retry_at: datetime | None = None
    operator: str | None = None  # what ran the stage (an Airflow operator), where the source says
    map_index: int | None = None  # an Airflow mapped task's index


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
    account: str = ""  # set by the runner from the pass's target (collectors/accounts.py)
    region: str = ""

    def as_row(self) -> dict[str, Any]:
        """The ``run_logs`` columns."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class LogRead:
    """That the logs collector read a run's events (``log_reads``): at ``read_at``, when the run
    had ended at ``ended_at``; ``complete`` once the read came after the run's end plus the
    re-read window (late events are in), so it is not read again unless its end changes."""

    run_id: str
    ended_at: datetime | None
    read_at: datetime
    complete: bool

    def as_row(self) -> dict[str, Any]:
        """The ``log_reads`` columns."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class InvocationRow:
    """One Lambda invocation's figures from its REPORT line (``lambda_invocations``)."""

    log_group: str
    request_id: str
    function_name: str
    ended_at: datetime
    duration_ms: float
    billed_duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None  # a cold start
    status: str | None = None
    pipeline: str = ""
    log_stream: str = ""
    account: str = ""  # set by the runner from the pass's target (collectors/accounts.py)
    region: str = ""

    def as_row(self) -> dict[str, Any]:
        """The ``lambda_invocations`` columns."""
        return dataclasses.asdict(self)


MetricPoint = tuple[str, datetime, float]  # (series_key, ts, value)


@dataclass(frozen=True, kw_only=True)
class MetricData:
    """Metric series (``metric_series`` columns with ``series_key``) and their points; the
    database assigns series ids, so the runner writes both together."""

    series: list[dict[str, Any]]
    points: list[MetricPoint]


@dataclass(frozen=True, kw_only=True)
class CostDays:
    """Daily cost rows of ``source`` that *replace* what is stored for ``start <= day < end``
    (a source that restates days, or an export month read again)."""

    source: str
    start: date
    end: date
    rows: pd.DataFrame  # cost_daily columns but source and updated_at
    where: Mapping[str, str] = field(default_factory=dict)  # narrows the replaced rows (e.g. one account)


@dataclass(frozen=True, kw_only=True)
class ForecastRow:
    """A forecast snapshot with its daily points (``forecast_snapshots`` / ``forecast_points``)."""

    created_at: datetime
    method: str
    subject: str
    level: float  # a fraction: 0.8 for an 80% interval
    points: pd.DataFrame  # day, mean, lower, upper
    fields: Mapping[str, Any] = field(default_factory=dict)  # other forecast_snapshots columns


@dataclass
class Batch:
    """What one pass produced, typed; the runner writes all of it in one transaction."""

    runs: list[RunRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    logs: list[LogRow] = field(default_factory=list)
    invocations: list[InvocationRow] = field(default_factory=list)
    log_reads: list[LogRead] = field(default_factory=list)
    metrics: MetricData | None = None
    costs: list[CostDays] = field(default_factory=list)
    forecasts: list[ForecastRow] = field(default_factory=list)
    watermarks: dict[str, str] = field(default_factory=dict)  # key -> value, for this source
    window_start: datetime | None = None
    window_end: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # for collector_runs.details


class Collector:
    """The interface every collector implements (subclass it; see the module docstring)."""

    name: str
    # what one pass reads (collectors/accounts.py): "regional" (every account x region),
    # "account" (each account once, e.g. Cost Explorer) or "once" (not AWS, or not per account)
    scope: str = "once"

    def reads(self, ctx: Context) -> Reads:
        """What this pass needs from the store besides the watermarks (default: nothing)."""
        return NOTHING

    def collect(self, ctx: Context) -> Batch:
        """Read the source; return typed rows and the new watermarks. Never write."""
        raise NotImplementedError
