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
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import ALL, FAILURES, SUCCEEDED, TERMINAL
from store.schema import (
    pipelines as pipelines_table,
)
from store.schema import (
    places,
    run_daily,
    run_logs,
    runs,
)

__all__ = [
    "accounts",
    "duration_quantiles",
    "last_runs",
    "pipeline_names",
    "recent_runs",
    "regions",
    "run_daily_frame",
    "run_points",
    "run_logs_frame",
    "run_window_stats",
    "runs_frame",
]


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


def pipeline_names(conn: Connection, *, since: date | None = None) -> list[str]:
    """Pipelines that have a stored definition or rollup rows (since ``since``), sorted."""
    q_roll = sa.select(run_daily.c.pipeline).distinct()
    if since is not None:
        q_roll = q_roll.where(run_daily.c.day >= since)
    names = set(conn.execute(sa.select(pipelines_table.c.name)).scalars()) | set(conn.execute(q_roll).scalars())
    return sorted(n for n in names if n)


def accounts(conn: Connection, *, since: date) -> list[str]:
    """Accounts seen in cost rows or runs since ``since`` or on stored pipelines, sorted."""
    return _seen(conn, places.c.account, pipelines_table.c.account, since)


def regions(conn: Connection, *, since: date) -> list[str]:
    """AWS regions seen in runs or cost rows since ``since`` or on stored pipelines, sorted."""
    return _seen(conn, places.c.region, pipelines_table.c.region, since)


def _seen(conn: Connection, column, configured, since: date) -> list[str]:
    # from ``places`` (days x places, kept by the run rollup and the cost writes): its size does
    # not grow with runs or cost rows a day, as the two weeks of runs and cost rows read before did
    found = set(conn.execute(sa.select(column).where(places.c.day >= since, column != ALL).distinct()).scalars())
    found |= set(conn.execute(sa.select(configured).distinct()).scalars())
    return sorted(x for x in found if x)


def _placed(q, table, accounts: Sequence[str] | None, regions: Sequence[str] | None):
    """``q`` narrowed to rows of ``table`` read from ``accounts`` and ``regions`` (None: any)."""
    if accounts:
        q = q.where(table.c.account.in_(list(accounts)))
    if regions:
        q = q.where(table.c.region.in_(list(regions)))
    return q


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


POINT_COLUMNS = ["pipeline", "started_at", "status", "attempt", "duration_seconds", "records_out"]


def run_points(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """The few columns of every run started in ``[start, end)`` that a trend in buckets shorter than
    a day needs (``insights.kpis.rollup_runs``): pipeline, started_at, status, attempt,
    duration_seconds, records_out; oldest first. For short windows (a day or a week) only."""
    r = runs.c
    q = sa.select(r.pipeline, r.started_at, r.status, r.attempt, r.duration_seconds, r.records_out).where(
        r.started_at >= start, r.started_at < end
    )
    q = _pipes(q, r.pipeline, pipelines).order_by(r.started_at, r.pipeline)
    return _frame(conn, q, POINT_COLUMNS, ["started_at"])


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
    failed = sa.func.sum(sa.case((runs.c.status.in_(FAILURES), 1), else_=0))
    ok = sa.func.sum(sa.case((runs.c.status == SUCCEEDED, 1), else_=0))
    terminal = sa.func.sum(sa.case((runs.c.status.in_(TERMINAL), 1), else_=0))
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


def first_run_start(conn: Connection, before: datetime, *, pipelines: Sequence[str] | None = None) -> datetime | None:
    """When the oldest stored run started before ``before`` began (where the run history starts),
    or None when there is none."""
    q = _pipes(sa.select(sa.func.min(runs.c.started_at)).where(runs.c.started_at < before), runs.c.pipeline, pipelines)
    return conn.execute(q).scalar()


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
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Runs started in ``[start, end)`` (of ``accounts`` and ``regions`` when given), newest first, at most ``limit``."""
    q = sa.select(*RUN_COLUMNS).where(runs.c.started_at >= start, runs.c.started_at < end)
    q = _pipes(q, runs.c.pipeline, pipelines)
    q = _placed(q, runs, accounts, regions)
    if statuses:
        q = q.where(runs.c.status.in_(list(statuses)))
    q = q.order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
    return _frame(conn, q, [c.name for c in RUN_COLUMNS], RUN_TIMES)


def recent_runs(
    conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None, per_pipeline: int = 24,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Each pipeline's newest ``per_pipeline`` runs started in ``[since, until)`` (pipeline, started_at, status, run_id).

    On PostgreSQL each pipeline's runs are read newest first from ``ix_runs_pipeline_started_at``
    (a LATERAL ``LIMIT``, the pipelines found by a skip scan of that index), so the read does not
    grow with the runs in the window; a window function over the window's runs is what SQLite gets.
    """
    if conn.dialect.name == "postgresql":
        return _recent_runs_pg(conn, since, pipelines, per_pipeline, until)
    rn = sa.func.row_number().over(partition_by=runs.c.pipeline, order_by=runs.c.started_at.desc()).label("rn")
    inner = sa.select(runs.c.pipeline, runs.c.started_at, runs.c.status, runs.c.run_id, rn).where(
        runs.c.started_at >= since
    )
    if until is not None:
        inner = inner.where(runs.c.started_at < until)
    inner = _pipes(inner, runs.c.pipeline, pipelines).subquery()
    q = (
        sa.select(inner.c.pipeline, inner.c.started_at, inner.c.status, inner.c.run_id)
        .where(inner.c.rn <= per_pipeline)
        .order_by(inner.c.pipeline, inner.c.started_at)
    )
    return _frame(conn, q, ["pipeline", "started_at", "status", "run_id"], ["started_at"])


def _recent_runs_pg(
    conn: Connection, since: datetime, pipelines: Sequence[str] | None, per_pipeline: int, until: datetime | None
) -> pd.DataFrame:
    names: sa.FromClause
    if pipelines:
        names = sa.values(sa.column("name", sa.String), name="names").data([(p,) for p in pipelines])
    else:
        # the distinct pipelines, one index probe each (a recursive "loose index scan")
        seed = sa.select(sa.func.min(runs.c.pipeline).label("name")).cte("names", recursive=True)
        after = sa.select(sa.func.min(runs.c.pipeline)).where(runs.c.pipeline > seed.c.name).scalar_subquery()
        names = seed.union_all(sa.select(after).where(seed.c.name.is_not(None)))
    query = sa.select(runs.c.pipeline, runs.c.started_at, runs.c.status, runs.c.run_id).where(
        runs.c.pipeline == names.c.name, runs.c.started_at >= since
    )
    if until is not None:
        query = query.where(runs.c.started_at < until)
    newest = query.order_by(runs.c.started_at.desc()).limit(per_pipeline).lateral("newest")
    q = (
        sa.select(newest.c.pipeline, newest.c.started_at, newest.c.status, newest.c.run_id)
        .select_from(names)
        .join(newest, sa.true())
        .order_by(newest.c.pipeline, newest.c.started_at)
    )
    return _frame(conn, q, ["pipeline", "started_at", "status", "run_id"], ["started_at"])


def last_runs(
    conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None, until: datetime | None = None,
    success: bool = True,
) -> pd.DataFrame:
    """Per pipeline: last start, last successful end and last status of runs started in ``[since, until)``.

    ``success=False`` leaves out ``last_success_at``: its query reads every successful run of the
    window (no index holds the latest end): 0.25 s over 35 days of 10M runs in two years, where
    the last start is an index-only scan (60 ms) and the status one lookup per pipeline."""
    before = [] if until is None else [runs.c.started_at < until]
    last_start = sa.select(runs.c.pipeline, sa.func.max(runs.c.started_at).label("last_started_at")).where(
        runs.c.started_at >= since, *before
    )
    last_start = _pipes(last_start, runs.c.pipeline, pipelines).group_by(runs.c.pipeline)
    out = _frame(conn, last_start, ["pipeline", "last_started_at"], ["last_started_at"])
    if success:
        ok = sa.select(runs.c.pipeline, sa.func.max(runs.c.ended_at).label("last_success_at")).where(
            runs.c.started_at >= since, runs.c.status == SUCCEEDED, *before
        )
        ok = _pipes(ok, runs.c.pipeline, pipelines).group_by(runs.c.pipeline)
        b = _frame(conn, ok, ["pipeline", "last_success_at"], ["last_success_at"])
        out = out.merge(b, on="pipeline", how="outer")
    if out.empty:
        cols = ["pipeline", "last_started_at", "last_success_at", "last_status"]
        return pd.DataFrame(columns=[c for c in cols if success or c != "last_success_at"])
    # the status of each pipeline's latest run: one indexed lookup per pipeline
    statuses: list[str | None] = []
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
