"""One collection pass: run each configured source, write what it returns, record the pass.

The runner is the only part of collectors/ that writes to the store. For every source it
records a ``collector_runs`` row when the pass begins (committed at once, so a crashed pass
stays visible as ``running``), reads the source's watermarks and whatever else the collector
asks for (``Collector.reads``), calls ``collect(ctx)``, then in ONE transaction writes the
batch (``persist``: rows, cost days, metric points, forecasts, then the watermarks), refreshes
the ``run_daily`` days touched and closes the pass record with rows, API calls and their price.
A failure anywhere rolls all of that back together, so the next pass resumes from the last
committed watermark: nothing lost, nothing twice. A failing source is recorded as failed and
the others still run.

Sources live in ``SOURCES`` as ``"module"`` (whose ``create(settings) -> Collector`` makes the
collector) or ``"module:function"``, imported when the source runs (a source's dependencies,
such as pyarrow for the export files, load only when it runs). Configuration, under ``[collectors]``::

    [collectors]
    sources = ["reference", "stepfunctions"]   # optional: which sources run by default
    read_timeout_seconds = 60                  # a slower AWS answer is retried
    [collectors.glue]
    enabled = true            # default: true for the built-in sources
    cron = "*/15 * * * *"     # for `pipepulse schedule`
    # ... plus each source's own keys (see its module)
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from sqlalchemy.engine import Connection, Engine

from collectors.aws import default_client_config
from collectors.base import NOTHING, Batch, Collector, Context, Reads, Stored
from pipepulse.cron import CronSchedule
from pipepulse.errors import CollectorError, ConfigError, PipepulseError, StoreError
from pipepulse.settings import Settings, opt, require_table
from store.collecting import failed_runs_since, source_watermarks, upsert_pipelines
from store.costs import daily_cost, replace_cost_rows
from store.db import is_database_error, store_error
from store.forecasts import save_forecast
from store.metrics import known_series, write_metrics
from store.rollups import refresh_run_daily
from store.schema import lambda_invocations, run_logs, run_steps, runs
from store.state import finish_collector_run, set_watermark, start_collector_run
from store.writes import upsert

__all__ = [
    "DEFAULT_CRON",
    "SOURCES",
    "PassResult",
    "SourceConfig",
    "collect",
    "configured_sources",
    "enabled_sources",
    "persist",
    "run_source",
    "source_config",
]

log = logging.getLogger(__name__)

# name -> "module" (its create), "module:function", or a factory ``(settings) -> Collector``.
# Order matters: run sources before `logs`, which reads the failed runs they stored.
SOURCES: dict[str, str | Callable[[Settings], Collector]] = {
    "reference": "collectors.reference",
    "stepfunctions": "collectors.stepfunctions",
    "glue": "collectors.glue",
    "cloudwatch": "collectors.cloudwatch",
    "logs": "collectors.logs",
    "ce": "collectors.costexplorer",
    "focus": "collectors.costfiles:create_focus",
    "cur": "collectors.costfiles:create_cur",
    "athena": "collectors.athena",
    "airflow": "collectors.airflow",
}
# Sources that run when the config says nothing (cost files need a path, so they are opt-in).
DEFAULT_ENABLED = ("reference", "stepfunctions", "glue", "cloudwatch", "logs", "ce")
DEFAULT_CRON = {
    "reference": "*/5 * * * *",
    "stepfunctions": "*/5 * * * *",
    "glue": "*/15 * * * *",
    "cloudwatch": "*/5 * * * *",
    "logs": "*/15 * * * *",
    "ce": "0 */6 * * *",
    "focus": "0 */6 * * *",
    "cur": "0 */6 * * *",
    "athena": "0 */6 * * *",
    "airflow": "*/5 * * * *",
}


@dataclass(frozen=True)
class SourceConfig:
    """One source's ``[collectors.<name>]`` table, checked for the common keys."""

    name: str
    enabled: bool
    explicit: bool  # enabled by the config (not only by default)
    cron: str
    options: Mapping[str, Any]


@dataclass
class PassResult:
    """The outcome of one source's pass, as recorded in ``collector_runs``."""

    source: str
    status: str  # succeeded | failed
    rows_written: int = 0
    api_calls: int = 0
    api_cost_usd: float = 0.0
    error: str | None = None
    collector_run_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    calls: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    store_down: bool = False  # failed because the database could not be reached

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def _collectors_table(settings: Settings) -> Mapping[str, Any]:
    return settings.section("collectors")


def source_config(settings: Settings, name: str) -> SourceConfig:
    """The checked config of source ``name`` (ConfigError naming file and key when wrong)."""
    label = settings.config_label
    table = _collectors_table(settings)
    listed = opt(table, "sources", list, label, "collectors")
    if listed is not None:
        unknown = [s for s in listed if s not in SOURCES]
        if unknown:
            raise ConfigError(f"{label}: [collectors] sources: unknown source {unknown[0]!r}; known: {', '.join(SOURCES)}")
    own = require_table(table.get(name, {}), label, f"collectors.{name}")
    enabled_flag = opt(own, "enabled", bool, label, f"collectors.{name}")
    if enabled_flag is not None:
        enabled, explicit = enabled_flag, enabled_flag
    elif listed is not None:
        enabled, explicit = name in listed, name in listed
    else:
        enabled, explicit = name in DEFAULT_ENABLED, False
    cron = opt(own, "cron", str, label, f"collectors.{name}", default=DEFAULT_CRON.get(name, "*/15 * * * *"))
    try:
        CronSchedule(cron)
    except ValueError as exc:
        raise ConfigError(f"{label}: [collectors.{name}] cron: {exc}") from exc
    return SourceConfig(name=name, enabled=enabled, explicit=explicit, cron=cron, options=own)


def configured_sources(settings: Settings) -> list[SourceConfig]:
    """Every known source's config, in run order."""
    table = _collectors_table(settings)
    for key, value in table.items():
        if isinstance(value, Mapping) and key not in SOURCES:
            raise ConfigError(f"{settings.config_label}: [collectors.{key}]: unknown source; known: {', '.join(SOURCES)}")
    return [source_config(settings, name) for name in SOURCES]


def enabled_sources(settings: Settings) -> list[SourceConfig]:
    """The sources a pass runs when none are named, in run order."""
    return [c for c in configured_sources(settings) if c.enabled]


def _load(name: str, settings: Settings) -> Collector:
    target = SOURCES[name]
    if callable(target):
        return target(settings)
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function or "create")(settings)


def collect(
    settings: Settings,
    engine: Engine,
    *,
    sources: Sequence[str] | None = None,
    now: datetime,
    session_factory: Callable[[], Any] | None = None,
) -> list[PassResult]:
    """One pass of each source (``sources``, or every enabled one); a failure does not stop the rest."""
    configs = {c.name: c for c in configured_sources(settings)}
    if sources:
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise ConfigError(f"unknown collector source {unknown[0]!r}; known: {', '.join(SOURCES)}")
        chosen = [configs[name] for name in SOURCES if name in sources]
    else:
        chosen = enabled_sources(settings)
    sync_pipelines(settings, engine, now=now)
    return [run_source(settings, engine, c, now=now, session_factory=session_factory) for c in chosen]


def sync_pipelines(settings: Settings, engine: Engine, *, now: datetime) -> int:
    """Upsert the ``pipelines`` rows from the settings."""
    rows = [
        {
            "name": p.name,
            "source": p.source,
            "schedule": p.schedule,
            "interval_seconds": p.interval_seconds,
            "freshness_sla_seconds": p.freshness_sla_seconds,
            "owner": p.owner,
            "cost_tag": p.cost_tag,
            "resource": p.resource,
            "account": _account_of(p.resource),
            "region": settings.aws_region if p.source != "reference" else "",
        }
        for p in settings.pipelines
    ]
    if not rows:
        return 0
    with engine.begin() as conn:
        return upsert_pipelines(conn, rows, now=now)


def _account_of(resource: str | None) -> str:
    if resource and resource.startswith("arn:"):
        parts = resource.split(":")
        return parts[4] if len(parts) > 4 else ""
    return ""


def run_source(
    settings: Settings,
    engine: Engine,
    config: SourceConfig | str,
    *,
    now: datetime,
    session_factory: Callable[[], Any] | None = None,
) -> PassResult:
    """One pass of one source, recorded in ``collector_runs``; never raises for a source failure."""
    if isinstance(config, str):
        config = source_config(settings, config)
    name = config.name
    t0 = time.perf_counter()
    run_id = start_collector_run(engine, name, now=now)
    with engine.connect() as conn:
        marks = source_watermarks(conn, name)
    ctx = Context(
        settings=settings,
        session_factory=session_factory or boto3.Session,
        now=now,
        watermarks=marks,
        client_config=default_client_config(read_timeout=_read_timeout(settings)),
        source=name,
        options=config.options,
    )
    result = PassResult(source=name, status="failed", collector_run_id=run_id)
    try:
        collector = _load(name, settings)
        ctx.stored = read_stored(engine, collector.reads(ctx))
        try:
            batch = collector.collect(ctx)
        except (KeyError, TypeError, AttributeError) as exc:
            # a field missing or of another type in an AWS answer (or a ledger row)
            raise CollectorError(name, f"unexpected shape of an answer: {type(exc).__name__}: {exc}; "
                                       "please report it with the collector_runs details") from exc
        _check_batch(name, batch)
        details = _details(ctx, batch)
        with engine.begin() as conn:
            rows = persist(conn, name, batch, now=now)
            days = run_days(batch)
            if days:
                refresh_run_daily(conn, days=days, now=now)
            finish_collector_run(
                conn, run_id, now=now, status="succeeded", rows_written=rows, api_calls=ctx.calls.total,
                api_cost_usd=ctx.calls.cost(settings.prices), details=details,
                window_start=batch.window_start, window_end=batch.window_end,
            )
        result.status = "succeeded"
        result.rows_written = rows
        result.window_start, result.window_end = batch.window_start, batch.window_end
    except Exception as exc:  # noqa: BLE001 - a source's failure is recorded, the others run
        if is_database_error(exc):
            # one line, no traceback; the pass record cannot be closed while the database is away
            # (it stays ``running`` until the next pass takes the lock over or the store returns)
            exc = store_error(engine, exc)
        message = str(exc) if isinstance(exc, PipepulseError) else f"{name}: unexpected {type(exc).__name__}: {exc}"
        log.warning("collector pass failed", extra={"source": name, "error": message}, exc_info=not isinstance(exc, PipepulseError))
        try:
            with engine.begin() as conn:
                finish_collector_run(
                    conn, run_id, now=now, status="failed", api_calls=ctx.calls.total,
                    api_cost_usd=ctx.calls.cost(settings.prices), error=message, details=_details(ctx, None),
                )
        except Exception as exc2:
            if not is_database_error(exc2):
                raise
            result.store_down = True
        if isinstance(exc, StoreError):
            result.store_down = True
        result.error = message
    result.api_calls = ctx.calls.total
    result.api_cost_usd = ctx.calls.cost(settings.prices)
    result.calls = dict(ctx.calls.calls)
    result.retries = dict(ctx.calls.retries)
    result.seconds = time.perf_counter() - t0
    return result


def read_stored(engine: Engine, reads: Reads) -> Stored:
    """Answer a collector's ``reads`` from the store, before its pass."""
    if reads == NOTHING:
        return Stored()
    with engine.connect() as conn:
        series = frozenset(known_series(conn)) if reads.metric_series else frozenset()
        failed: tuple[Mapping[str, Any], ...] = ()
        if (q := reads.failed_runs) is not None:
            failed = tuple(failed_runs_since(conn, q.since, done_at_since=q.done, ended_after=q.ended_after, limit=q.limit))
        total = 0.0
        if (c := reads.cost_total) is not None and c.end > c.start:
            frame = daily_cost(conn, c.start, c.end - timedelta(days=1), source=c.source)
            total = float(frame["billed_cost"].sum()) if not frame.empty else 0.0
    return Stored(metric_series=series, failed_runs=failed, cost_total=total)


def persist(conn: Connection, source: str, batch: Batch, *, now: datetime) -> int:
    """Write a batch and its watermarks in the caller's transaction; returns rows changed."""
    changed = 0
    if batch.metrics is not None:
        changed += write_metrics(conn, batch.metrics.series, batch.metrics.points, now=now)
    for days in batch.costs:
        changed += replace_cost_rows(conn, days.source, days.start, days.end, days.rows, now=now)
    for f in batch.forecasts:
        changed += save_forecast(conn, created_at=f.created_at, method=f.method, subject=f.subject, level=f.level,
                                 points=f.points, **f.fields)
    for table, rows in ((runs, batch.runs), (run_steps, batch.steps), (run_logs, batch.logs),
                        (lambda_invocations, batch.invocations)):
        if rows:
            changed += upsert(conn, table, [r.as_row() for r in rows], now=now)
    for key, value in batch.watermarks.items():
        set_watermark(conn, source, value, key, now=now)
    return changed


def _read_timeout(settings: Settings) -> float:
    """``[collectors] read_timeout_seconds``: how long one AWS answer may take before it is retried."""
    label = settings.config_label
    value = opt(_collectors_table(settings), "read_timeout_seconds", (int, float), label, "collectors", default=60)
    if value <= 0:
        raise ConfigError(f"{label}: [collectors] read_timeout_seconds: expected a positive number, got {value}")
    return float(value)


def _check_batch(name: str, batch: Any) -> None:
    if not isinstance(batch, Batch):
        raise CollectorError(name, f"collect() returned {type(batch).__name__}, expected a Batch")


def _details(ctx: Context, batch: Batch | None) -> dict[str, Any]:
    out: dict[str, Any] = {"calls": dict(ctx.calls.calls), "retries": dict(ctx.calls.retries)}
    if batch is not None:
        out["rows"] = {t: len(r) for t, r in (("runs", batch.runs), ("run_steps", batch.steps), ("run_logs", batch.logs),
                                              ("lambda_invocations", batch.invocations)) if r}
        out.update(batch.details)
    return out


def run_days(batch: Batch) -> set[date]:
    """UTC days of the runs in ``batch`` (the ``run_daily`` days to refresh)."""
    return {r.started_at.astimezone(UTC).date() for r in batch.runs if r.started_at is not None}
