"""Reads the dashboard needs that no other store module offers (yet).

Every function takes a connection and bound parameters and returns a DataFrame, a dict or a
scalar; heavy aggregates are done here in SQL (or read from the ``run_daily`` rollup) so the
dashboard never pulls raw rows into pandas to group them. Times are tz-aware UTC.

Cost rows are read through ``store.costs`` (one source per day, Cost Explorer shapes), never
here.

To add a read: a function with keyword-only filters, columns from ``store.schema`` (never from
caller strings), and a test under ``tests/dashboard``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import (
    ANOMALY_STATUSES,
    anomalies,
    cost_daily,
    run_daily,
    run_logs,
    run_steps,
    runs,
)
from store.schema import (
    pipelines as pipelines_table,
)

__all__ = [
    "FAILED_STATUSES",
    "accounts",
    "anomalies_frame",
    "duration_quantiles",
    "failures",
    "last_runs",
    "freshness_runs",
    "pipeline_names",
    "pipelines_frame",
    "recent_runs",
    "run",
    "run_cost_summary",
    "run_daily_frame",
    "run_logs_frame",
    "run_steps_frame",
    "run_window_stats",
    "runs_frame",
    "set_anomaly_status",
]

FAILED_STATUSES = ("FAILED", "TIMED_OUT")


def _utc(series: pd.Series) -> pd.Series:
    out = pd.to_datetime(series, utc=True)
    return out


def _frame(conn: Connection, query, columns: Sequence[str], times: Sequence[str] = ()) -> pd.DataFrame:
    rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
    for col in times:
        frame[col] = _utc(frame[col]) if not frame.empty else pd.Series(dtype="datetime64[us, UTC]")
    return frame


# ---- pipelines --------------------------------------------------------------------------------


def pipelines_frame(conn: Connection) -> pd.DataFrame:
    """The watched pipelines as stored (name, source, schedule, interval, SLA, owner, account)."""
    cols = [
        pipelines_table.c.name,
        pipelines_table.c.source,
        pipelines_table.c.schedule,
        pipelines_table.c.interval_seconds,
        pipelines_table.c.freshness_sla_seconds,
        pipelines_table.c.owner,
        pipelines_table.c.account,
        pipelines_table.c.region,
    ]
    return _frame(conn, sa.select(*cols).order_by(pipelines_table.c.name), [c.name for c in cols])


def pipeline_names(conn: Connection, *, since: date | None = None) -> list[str]:
    """Pipelines that have a stored definition or rollup rows (since ``since``), sorted."""
    q_roll = sa.select(run_daily.c.pipeline).distinct()
    if since is not None:
        q_roll = q_roll.where(run_daily.c.day >= since)
    names = set(conn.execute(sa.select(pipelines_table.c.name)).scalars()) | set(conn.execute(q_roll).scalars())
    return sorted(n for n in names if n)


def accounts(conn: Connection, *, since: date) -> list[str]:
    """Accounts seen in cost rows since ``since`` or on stored pipelines, sorted."""
    q = sa.select(cost_daily.c.account).where(cost_daily.c.day >= since, cost_daily.c.account != "*").distinct()
    found = set(conn.execute(q).scalars()) | set(conn.execute(sa.select(pipelines_table.c.account).distinct()).scalars())
    return sorted(a for a in found if a)


# ---- runs -------------------------------------------------------------------------------------


def _pipes(q, column, names: Sequence[str] | None):
    return q.where(column.in_(list(names))) if names else q


def run_daily_frame(
    conn: Connection, start: date, end: date, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows of the ``run_daily`` rollup with ``start <= day <= end``, by day then pipeline."""
    cols = [c for c in run_daily.c if c.name != "updated_at"]
    q = sa.select(*cols).where(run_daily.c.day >= start, run_daily.c.day <= end)
    q = _pipes(q, run_daily.c.pipeline, pipelines).order_by(run_daily.c.day, run_daily.c.pipeline)
    frame = _frame(conn, q, [c.name for c in cols])
    if not frame.empty:
        frame["day"] = pd.to_datetime(frame["day"])
    return frame


def duration_quantiles(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    pipelines: Sequence[str] | None = None,
    quantiles: Sequence[float] = (0.5, 0.95),
) -> dict[float, float | None]:
    """Exact duration quantiles of terminal runs started in ``[start, end)``.

    PostgreSQL computes them in SQL (``percentile_cont``); SQLite has no percentile function, so
    there only the one duration column of the window is read and numpy interpolates the same way.
    """
    where = [
        runs.c.started_at >= start,
        runs.c.started_at < end,
        runs.c.duration_seconds.is_not(None),
    ]
    if pipelines:
        where.append(runs.c.pipeline.in_(list(pipelines)))
    if conn.dialect.name == "postgresql":
        exprs = [sa.func.percentile_cont(q).within_group(runs.c.duration_seconds) for q in quantiles]
        row = conn.execute(sa.select(*exprs).where(*where)).one()
        return {q: (float(v) if v is not None else None) for q, v in zip(quantiles, row, strict=True)}
    values = np.array(conn.execute(sa.select(runs.c.duration_seconds).where(*where)).scalars().all(), dtype=float)
    if values.size == 0:
        return {q: None for q in quantiles}
    return {q: float(np.quantile(values, q)) for q in quantiles}


def run_window_stats(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None
) -> dict[str, float]:
    """Counts and sums over runs started in ``[start, end)``, in one indexed aggregate query."""
    failed = sa.func.sum(sa.case((runs.c.status.in_(FAILED_STATUSES), 1), else_=0))
    ok = sa.func.sum(sa.case((runs.c.status == "SUCCEEDED", 1), else_=0))
    terminal = sa.func.sum(sa.case((runs.c.status.in_(("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED")), 1), else_=0))
    q = sa.select(
        sa.func.count(),
        ok,
        failed,
        terminal,
        sa.func.coalesce(sa.func.sum(runs.c.retries), 0),
        sa.func.coalesce(sa.func.sum(runs.c.records_in), 0),
        sa.func.coalesce(sa.func.sum(runs.c.records_out), 0),
        sa.func.coalesce(sa.func.sum(runs.c.records_rejected), 0),
        sa.func.coalesce(sa.func.sum(runs.c.cost_usd), 0.0),
    ).where(runs.c.started_at >= start, runs.c.started_at < end)
    q = _pipes(q, runs.c.pipeline, pipelines)
    row = conn.execute(q).one()
    keys = ["runs", "succeeded", "failed", "terminal", "retries", "records_in", "records_out", "records_rejected", "cost_usd"]
    return {k: float(v or 0) for k, v in zip(keys, row, strict=True)}


RUN_COLUMNS = [
    runs.c.run_id,
    runs.c.pipeline,
    runs.c.status,
    runs.c.trigger,
    runs.c.attempt,
    runs.c.scheduled_for,
    runs.c.queued_at,
    runs.c.started_at,
    runs.c.ended_at,
    runs.c.duration_seconds,
    runs.c.records_in,
    runs.c.records_out,
    runs.c.records_rejected,
    runs.c.retries,
    runs.c.error_type,
    runs.c.error_message,
    runs.c.correlation_id,
    runs.c.cost_usd,
]
RUN_TIMES = ["scheduled_for", "queued_at", "started_at", "ended_at"]


def runs_frame(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    pipelines: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 2000,
) -> pd.DataFrame:
    """Runs started in ``[start, end)``, newest first, at most ``limit``."""
    q = sa.select(*RUN_COLUMNS).where(runs.c.started_at >= start, runs.c.started_at < end)
    q = _pipes(q, runs.c.pipeline, pipelines)
    if statuses:
        q = q.where(runs.c.status.in_(list(statuses)))
    q = q.order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
    return _frame(conn, q, [c.name for c in RUN_COLUMNS], RUN_TIMES)


def failures(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None, limit: int = 50
) -> pd.DataFrame:
    """Failed and timed-out runs started in ``[start, end)``, newest first."""
    return runs_frame(conn, start, end, pipelines=pipelines, statuses=FAILED_STATUSES, limit=limit)


def recent_runs(
    conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None, per_pipeline: int = 24
) -> pd.DataFrame:
    """Each pipeline's newest ``per_pipeline`` runs started since ``since`` (pipeline, started_at, status, run_id)."""
    rn = sa.func.row_number().over(partition_by=runs.c.pipeline, order_by=runs.c.started_at.desc()).label("rn")
    inner = sa.select(runs.c.pipeline, runs.c.started_at, runs.c.status, runs.c.run_id, rn).where(
        runs.c.started_at >= since
    )
    inner = _pipes(inner, runs.c.pipeline, pipelines).subquery()
    q = (
        sa.select(inner.c.pipeline, inner.c.started_at, inner.c.status, inner.c.run_id)
        .where(inner.c.rn <= per_pipeline)
        .order_by(inner.c.pipeline, inner.c.started_at)
    )
    return _frame(conn, q, ["pipeline", "started_at", "status", "run_id"], ["started_at"])


def last_runs(
    conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per pipeline: last start, last successful end and last status since ``since``."""
    last_start = sa.select(runs.c.pipeline, sa.func.max(runs.c.started_at).label("last_started_at")).where(
        runs.c.started_at >= since
    )
    last_start = _pipes(last_start, runs.c.pipeline, pipelines).group_by(runs.c.pipeline)
    ok = sa.select(runs.c.pipeline, sa.func.max(runs.c.ended_at).label("last_success_at")).where(
        runs.c.started_at >= since, runs.c.status == "SUCCEEDED"
    )
    ok = _pipes(ok, runs.c.pipeline, pipelines).group_by(runs.c.pipeline)
    a = _frame(conn, last_start, ["pipeline", "last_started_at"], ["last_started_at"])
    b = _frame(conn, ok, ["pipeline", "last_success_at"], ["last_success_at"])
    out = a.merge(b, on="pipeline", how="outer")
    if out.empty:
        return pd.DataFrame(columns=["pipeline", "last_started_at", "last_success_at", "last_status"])
    # the status of each pipeline's latest run: one indexed lookup per pipeline
    statuses = []
    for name, started in zip(out["pipeline"], out["last_started_at"], strict=True):
        if pd.isna(started):
            statuses.append(None)
            continue
        statuses.append(
            conn.execute(
                sa.select(runs.c.status)
                .where(runs.c.pipeline == name, runs.c.started_at == started.to_pydatetime())
                .limit(1)
            ).scalar_one_or_none()
        )
    out["last_status"] = statuses
    return out.sort_values("pipeline").reset_index(drop=True)


def run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    """One run as a dict (all columns, times tz-aware), or None."""
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def run_steps_frame(conn: Connection, run_id: str) -> pd.DataFrame:
    """A run's steps, every attempt, in start order."""
    cols = [c for c in run_steps.c if c.name != "updated_at"]
    q = sa.select(*cols).where(run_steps.c.run_id == run_id).order_by(
        run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt
    )
    return _frame(conn, q, [c.name for c in cols], ["queued_at", "started_at", "ended_at", "next_retry_at"])


def run_logs_frame(
    conn: Connection, *, run_id: str, correlation_id: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Log lines of a run (by run id, or by its correlation id), oldest first, at most ``limit``."""
    cond = run_logs.c.run_id == run_id
    if correlation_id:
        cond = sa.or_(cond, run_logs.c.correlation_id == correlation_id)
    cols = [run_logs.c.ts, run_logs.c.level, run_logs.c.stage, run_logs.c.message, run_logs.c.correlation_id, run_logs.c.log_stream]
    q = sa.select(*cols).where(cond).order_by(run_logs.c.ts, run_logs.c.log_id).limit(limit)
    return _frame(conn, q, [c.name for c in cols], ["ts"])


# ---- cost per run ------------------------------------------------------------------------------


def run_cost_summary(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """SQL twin of ``insights.costs.run_cost_summary`` over runs started in ``[start, end)``:
    pipeline, runs, succeeded, failed, records_out (of succeeded runs), cost_usd,
    failed_cost_usd, retry_cost_usd (attempt > 1 or trigger "retry")."""
    cost = sa.func.coalesce(runs.c.cost_usd, 0.0)
    ok = runs.c.status == "SUCCEEDED"
    bad = runs.c.status.in_(FAILED_STATUSES)
    retry = sa.or_(runs.c.attempt > 1, runs.c.trigger == "retry")
    q = sa.select(
        runs.c.pipeline,
        sa.func.count(),
        sa.func.sum(sa.case((ok, 1), else_=0)),
        sa.func.sum(sa.case((bad, 1), else_=0)),
        sa.func.sum(sa.case((ok, sa.func.coalesce(runs.c.records_out, 0)), else_=0)),
        sa.func.sum(cost),
        sa.func.sum(sa.case((bad, cost), else_=0.0)),
        sa.func.sum(sa.case((retry, cost), else_=0.0)),
    ).where(runs.c.started_at >= start, runs.c.started_at < end)
    q = _pipes(q, runs.c.pipeline, pipelines).group_by(runs.c.pipeline).order_by(runs.c.pipeline)
    cols = ["pipeline", "runs", "succeeded", "failed", "records_out", "cost_usd", "failed_cost_usd", "retry_cost_usd"]
    frame = _frame(conn, q, cols)
    for c in cols[1:5]:
        frame[c] = frame[c].astype("int64")
    for c in cols[5:]:
        frame[c] = frame[c].astype(float)
    return frame


def freshness_runs(
    conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """The columns freshness needs (pipeline, status, scheduled_for, started_at, ended_at) of
    runs started since ``since``, plus each pipeline's last successful run even when older."""
    cols = [runs.c.pipeline, runs.c.status, runs.c.scheduled_for, runs.c.started_at, runs.c.ended_at]
    names = ["pipeline", "status", "scheduled_for", "started_at", "ended_at"]
    times = ["scheduled_for", "started_at", "ended_at"]
    recent = _frame(conn, _pipes(sa.select(*cols).where(runs.c.started_at >= since), runs.c.pipeline, pipelines), names, times)
    # pipelines with no success in the window: fetch their newest success (one indexed query each)
    have = set(recent.loc[recent["status"] == "SUCCEEDED", "pipeline"])
    wanted = list(pipelines) if pipelines else sorted(set(conn.execute(sa.select(pipelines_table.c.name)).scalars()) | set(recent["pipeline"]))
    extra = []
    for name in wanted:
        if name in have:
            continue
        q = (
            sa.select(*cols)
            .where(runs.c.pipeline == name, runs.c.started_at < since, runs.c.status == "SUCCEEDED")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        extra.append(_frame(conn, q, names, times))
    frames = [f for f in [recent, *extra] if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else recent


# ---- anomalies --------------------------------------------------------------------------------

ANOMALY_COLUMNS = [c for c in anomalies.c]


def anomalies_frame(
    conn: Connection,
    *,
    statuses: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    pipelines: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """Anomalies, newest ``last_seen`` first, filtered by status, kind, pipeline and last seen."""
    q = sa.select(anomalies)
    if statuses:
        q = q.where(anomalies.c.status.in_(list(statuses)))
    if kinds:
        q = q.where(anomalies.c.kind.in_(list(kinds)))
    if pipelines:
        q = q.where(anomalies.c.pipeline.in_(list(pipelines)))
    if since is not None:
        q = q.where(anomalies.c.last_seen >= since)
    q = q.order_by(anomalies.c.last_seen.desc(), anomalies.c.fingerprint).limit(limit)
    return _frame(
        conn,
        q,
        [c.name for c in ANOMALY_COLUMNS],
        ["window_start", "window_end", "status_at", "snoozed_until", "first_seen", "last_seen"],
    )


def set_anomaly_status(
    conn: Connection,
    fingerprint: str,
    status: str,
    *,
    by: str,
    now: datetime,
    note: str | None = None,
    snoozed_until: datetime | None = None,
) -> bool:
    """Set an anomaly's status (with who, when, a note, and the snooze end); False when unknown."""
    if status not in ANOMALY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ANOMALY_STATUSES)}, got {status!r}")
    if status == "snoozed" and snoozed_until is None:
        raise ValueError("snoozing needs snoozed_until")
    result = conn.execute(
        anomalies.update()
        .where(anomalies.c.fingerprint == fingerprint)
        .values(
            status=status,
            status_note=note,
            status_by=by,
            status_at=now.astimezone(UTC),
            snoozed_until=snoozed_until.astimezone(UTC) if status == "snoozed" and snoozed_until else None,
        )
    )
    return result.rowcount == 1
