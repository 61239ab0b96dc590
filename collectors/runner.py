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

AWS sources fan out over accounts and regions (``collectors/accounts.py``): the collector runs
once per target with that target's region and assumed-role credentials, its watermarks under
the target's key prefix, and every row it returns stamped with the target's account and region.
Each target is written in its own transaction, so a target that fails (a role that cannot be
assumed, a throttled region) loses only its own part: the pass is recorded as failed, naming
each failed target and why, with the other targets' rows stored and their watermarks moved.
The pass's ``details`` hold each target's status, rows and API calls (``targets``).

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

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from sqlalchemy.engine import Connection, Engine

from collectors.accounts import Credentials, Target, targets
from collectors.aws import CallCounter, default_client_config
from collectors.base import NOTHING, Batch, Collector, Context, Reads, Stored
from collectors.sources import SOURCES
from pipepulse.cron import CronSchedule
from pipepulse.errors import CollectorError, ConfigError, PipepulseError, StoreError
from pipepulse.settings import Settings, opt, require_table
from store.collecting import failed_runs_to_read, source_watermarks, upsert_pipelines
from store.costs import daily_cost, replace_cost_rows
from store.db import is_database_error, store_error
from store.forecasts import save_forecast
from store.metrics import known_series, write_metrics
from store.rollups import refresh_run_daily
from store.schema import lambda_invocations, log_reads, run_logs, run_steps, runs
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

# (the sources by name: collectors/sources.py, importable without this module's dependencies)
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
    # one entry per account x region read, when the source fans out (collectors/accounts.py):
    # account, name, region, status, rows, api_calls, calls, error
    targets: list[dict[str, Any]] = field(default_factory=list)

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
    credentials: Credentials | None = None,
) -> list[PassResult]:
    """One pass of each source (``sources``, or every enabled one); a failure does not stop the rest."""
    credentials = credentials or Credentials(settings, session_factory)
    configs = {c.name: c for c in configured_sources(settings)}
    if sources:
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise ConfigError(f"unknown collector source {unknown[0]!r}; known: {', '.join(SOURCES)}")
        chosen = [configs[name] for name in SOURCES if name in sources]
    else:
        chosen = enabled_sources(settings)
    sync_pipelines(settings, engine, now=now)
    return [run_source(settings, engine, c, now=now, session_factory=session_factory, credentials=credentials) for c in chosen]


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
            "region": _region_of(p.resource) or (settings.aws_region if p.source != "reference" else ""),
        }
        for p in settings.pipelines
    ]
    if not rows:
        return 0
    with engine.begin() as conn:
        return upsert_pipelines(conn, rows, now=now)


def _region_of(resource: str | None) -> str:
    if resource and resource.startswith("arn:"):
        parts = resource.split(":")
        return parts[3] if len(parts) > 3 else ""
    return ""


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
    slot: datetime | None = None,
    credentials: Credentials | None = None,
) -> PassResult:
    """One pass of one source, recorded in ``collector_runs`` (with the scheduler's cron ``slot``);
    never raises for a source failure. The record's ``ended_at`` is ``now`` plus the pass's run time."""
    if isinstance(config, str):
        config = source_config(settings, config)
    name = config.name
    try:
        scope = _load(name, settings).scope
    except Exception:  # noqa: BLE001 - the pass below records the same failure
        scope = "once"
    chosen = targets(settings, scope)
    if len(chosen) > 1 or not chosen[0].default:
        return _run_targets(settings, engine, config, chosen, now=now, slot=slot,
                            credentials=credentials or Credentials(settings, session_factory))
    t0 = time.perf_counter()
    run_id = start_collector_run(engine, name, now=now, slot=slot)
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
        batch = _collect(name, collector, ctx)
        details = _details(ctx, batch)
        with engine.begin() as conn:
            rows = persist(conn, name, batch, now=now)
            days = run_days(batch)
            if days:
                refresh_run_daily(conn, days=days, now=now)
            finish_collector_run(
                conn, run_id, now=_ended(now, t0), status="succeeded", rows_written=rows, api_calls=ctx.calls.total,
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
                    conn, run_id, now=_ended(now, t0), status="failed", api_calls=ctx.calls.total,
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


def _ended(now: datetime, t0: float) -> datetime:
    """The pass's end on its own clock: ``now`` (its start) plus the time it took."""
    return now + timedelta(seconds=time.perf_counter() - t0)


def read_stored(engine: Engine, reads: Reads, target: Target | None = None, *, primary: bool = True) -> Stored:
    """Answer a collector's ``reads`` from the store, before its pass (for one non-default
    ``target``: its own metric series, its account's stored cost, and the failed runs of its
    account and region, plus, for the ``primary`` target, runs that name no account)."""
    if reads == NOTHING:
        return Stored()
    scoped = target is not None and not target.default
    with engine.connect() as conn:
        series = frozenset(known_series(conn)) if reads.metric_series else frozenset()
        if scoped and target is not None:
            series = frozenset(target.own(dict.fromkeys(series, "")))
        failed: tuple[Mapping[str, Any], ...] = ()
        if (q := reads.failed_runs) is not None:
            where = {"account": target.account, "region": target.region, "unplaced": primary} if scoped and target else {}
            failed = tuple(failed_runs_to_read(conn, ended_after=q.ended_after, limit=q.limit, **where))
        total = 0.0
        if (c := reads.cost_total) is not None and c.end > c.start:
            frame = daily_cost(conn, c.start, c.end - timedelta(days=1), source=c.source,
                               account=target.account if scoped and target else None)
            total = float(frame["billed_cost"].sum()) if not frame.empty else 0.0
    return Stored(metric_series=series, failed_runs=failed, cost_total=total)


def persist(conn: Connection, source: str, batch: Batch, *, now: datetime) -> int:
    """Write a batch and its watermarks in the caller's transaction; returns rows changed."""
    changed = 0
    if batch.metrics is not None:
        changed += write_metrics(conn, batch.metrics.series, batch.metrics.points, now=now)
    for days in batch.costs:
        changed += replace_cost_rows(conn, days.source, days.start, days.end, days.rows, now=now, where=days.where or None)
    for f in batch.forecasts:
        changed += save_forecast(conn, created_at=f.created_at, method=f.method, subject=f.subject, level=f.level,
                                 points=f.points, **f.fields)
    for table, rows in ((runs, batch.runs), (run_steps, batch.steps), (run_logs, batch.logs),
                        (lambda_invocations, batch.invocations)):
        if rows:
            changed += upsert(conn, table, [r.as_row() for r in rows], now=now)
    if batch.log_reads:  # bookkeeping, like the watermarks: not counted as rows written
        upsert(conn, log_reads, [r.as_row() for r in batch.log_reads], now=now)
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


def _collect(name: str, collector: Collector, ctx: Context, *, where: str = "") -> Batch:
    """``collector.collect(ctx)``, checked; a field missing or of another type in an AWS answer (or
    a ledger row) is a CollectorError naming the source (``where``: the account and region)."""
    try:
        batch = collector.collect(ctx)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CollectorError(name, f"unexpected shape of an answer{where}: {type(exc).__name__}: {exc}; "
                                   "please report it with the collector_runs details") from exc
    _check_batch(name, batch)
    return batch


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


# ---- fan-out over accounts and regions (collectors/accounts.py) ------------------------------


def _run_targets(
    settings: Settings,
    engine: Engine,
    config: SourceConfig,
    chosen: list[Target],
    *,
    now: datetime,
    credentials: Credentials,
    slot: datetime | None = None,
) -> PassResult:
    """One pass of one source over ``chosen`` targets, each written in its own transaction."""
    name = config.name
    t0 = time.perf_counter()
    run_id = start_collector_run(engine, name, now=now, slot=slot)
    with engine.connect() as conn:
        marks = source_watermarks(conn, name)
    total = CallCounter()
    result = PassResult(source=name, status="failed", collector_run_id=run_id)
    windows: list[tuple[datetime | None, datetime | None]] = []
    extra: dict[str, Any] = {}
    for i, target in enumerate(chosen):
        calls = CallCounter()
        entry: dict[str, Any] = {"account": target.account, "name": target.name, "region": target.region,
                                 "status": "failed", "rows": 0}
        try:
            batch = _collect_target(settings, engine, config, target, marks, calls, credentials, now=now, primary=i == 0)
            with engine.begin() as conn:
                rows = persist(conn, name, batch, now=now)
                days = run_days(batch)
                if days:
                    refresh_run_daily(conn, days=days, now=now)
            entry.update(status="succeeded", rows=rows)
            result.rows_written += rows
            windows.append((batch.window_start, batch.window_end))
            extra.update({k: v for k, v in batch.details.items() if k not in ("calls", "retries", "rows")})
        except Exception as exc:  # noqa: BLE001 - one target's failure is recorded, the others run
            if is_database_error(exc) or isinstance(exc, StoreError):
                entry["error"] = str(store_error(engine, exc)) if is_database_error(exc) else str(exc)
                result.store_down = True
            else:
                entry["error"] = str(exc) if isinstance(exc, PipepulseError) else f"{name}: unexpected {type(exc).__name__}: {exc}"
            log.warning("collector target failed", extra={"source": name, "account": target.account,
                                                          "region": target.region, "error": entry["error"]},
                        exc_info=not isinstance(exc, PipepulseError))
        entry.update(api_calls=calls.total, calls=dict(calls.calls), retries=dict(calls.retries))
        _merge(total, calls)
        result.targets.append(entry)
        if result.store_down:
            break
    failed = [t for t in result.targets if t["status"] != "succeeded"]
    skipped = len(chosen) - len(result.targets)
    if failed or skipped:
        shown = "; ".join(f"{_label(t)}: {t['error']}" for t in failed)
        result.error = f"{name}: {len(failed) + skipped} of {len(chosen)} account/region targets failed: {shown}"
    else:
        result.status = "succeeded"
    starts = [w[0] for w in windows if w[0] is not None]
    ends = [w[1] for w in windows if w[1] is not None]
    result.window_start = min(starts) if starts else None
    result.window_end = max(ends) if ends else None
    details = {"calls": dict(total.calls), "retries": dict(total.retries), "targets": result.targets, **extra}
    try:
        with engine.begin() as conn:
            finish_collector_run(
                conn, run_id, now=_ended(now, t0), status=result.status, rows_written=result.rows_written,
                api_calls=total.total,
                api_cost_usd=total.cost(settings.prices), error=result.error, details=details,
                window_start=result.window_start, window_end=result.window_end,
            )
    except Exception as exc:
        if not is_database_error(exc):
            raise
        result.store_down = True
    result.api_calls = total.total
    result.api_cost_usd = total.cost(settings.prices)
    result.calls = dict(total.calls)
    result.retries = dict(total.retries)
    result.seconds = time.perf_counter() - t0
    return result


def _collect_target(
    settings: Settings,
    engine: Engine,
    config: SourceConfig,
    target: Target,
    marks: Mapping[str, str],
    calls: CallCounter,
    credentials: Credentials,
    *,
    now: datetime,
    primary: bool,
) -> Batch:
    """Run the collector for one target; its batch, stamped and with prefixed keys."""
    name = config.name
    local = dataclasses.replace(settings, aws_region=target.region)
    collector = _load(name, local)
    options = config.options
    if collector.scope == "account" and not primary and "forecast" not in options:
        # a forecast (Cost Explorer bills each request) only for the first-listed, payer account;
        # ``stamp`` keeps no other account's forecast anyway
        options = {**options, "forecast": False}
    ctx = Context(
        settings=local,
        session_factory=credentials.session_factory(target, source=name, calls=calls),
        now=now,
        watermarks=target.own(dict(marks)),
        calls=calls,
        client_config=default_client_config(read_timeout=_read_timeout(settings)),
        source=name,
        options=options,
        account=target.account,
        region=target.region,
    )
    ctx.stored = read_stored(engine, collector.reads(ctx), target, primary=primary)
    batch = _collect(name, collector, ctx, where=f" in {target.label}")
    return stamp(batch, target, primary=primary)


def stamp(batch: Batch, target: Target, *, primary: bool = True) -> Batch:
    """``batch`` with ``target``'s account and region on every row that does not name its own,
    its watermark and metric series keys under the target's prefix, and its cost days scoped to
    the account (so one account's pass never replaces another's cost). Forecasts are kept from
    the ``primary`` (first-listed) account only: Cost Explorer's forecast is the whole bill as
    that account sees it (list the payer account first)."""
    if target.default:
        return batch
    acct, region, prefix = target.account, target.region, target.prefix

    def fill(row: Any) -> Any:
        return dataclasses.replace(row, account=row.account or acct, region=row.region or region)

    metrics = batch.metrics
    if metrics is not None:
        metrics = dataclasses.replace(
            metrics,
            series=[{**s, "series_key": prefix + s["series_key"], "account": s.get("account") or acct,
                     "region": s.get("region") or region} for s in metrics.series],
            points=[(prefix + key, ts, value) for key, ts, value in metrics.points],
        )
    costs = []
    for days in batch.costs:
        rows = days.rows.copy()
        if "account" in rows.columns:
            rows["account"] = rows["account"].where(rows["account"].astype(str) != "", acct)
        costs.append(dataclasses.replace(days, rows=rows, where={**days.where, "account": acct}))
    return dataclasses.replace(
        batch,
        runs=[fill(r) for r in batch.runs],
        logs=[fill(r) for r in batch.logs],
        invocations=[fill(r) for r in batch.invocations],
        metrics=metrics,
        costs=costs,
        forecasts=batch.forecasts if primary else [],
        watermarks={prefix + k: v for k, v in batch.watermarks.items()},
    )


def _merge(total: CallCounter, calls: CallCounter) -> None:
    total.calls.update(calls.calls)
    total.retries.update(calls.retries)
    total.billed_usd += calls.billed_usd


def _label(entry: Mapping[str, Any]) -> str:
    who = entry["name"] or entry["account"] or "default account"
    return f"{who} {entry['region']}"
