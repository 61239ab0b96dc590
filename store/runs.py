"""Reads of pipeline runs for KPIs, freshness, cost per run and run detail.

Every read filters on ``started_at`` with a plain range (``started_at >= :start AND
started_at < :end``) so the ``ix_runs_started_at`` / ``ix_runs_pipeline_started_at`` indexes
serve it, with bound parameters only. Aggregates over big windows are done in SQL:
``kpi_aggregates`` counts and sums per pipeline in the database, and takes percentiles with
``percentile_cont`` on PostgreSQL; SQLite has no percentile function, so there it fetches only
two float columns of the window and takes the same (linear) percentiles with numpy. Both
give the columns of ``insights.kpis.window_kpis`` (minus the time-to-recover ones, which come
from ``recovery_runs`` + ``insights.kpis.time_to_recover``).

Times come back tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import FAILURES, SUCCEEDED, TERMINAL
from store.schema import run_steps, runs

__all__ = [
    "ALL",
    "AGGREGATE_COLUMNS",
    "RunDetail",
    "freshness_runs",
    "kpi_aggregates",
    "recent_failures",
    "recovery_runs",
    "run_cost_summary",
    "run_detail",
    "runs_frame",
]

ALL = "(all)"  # the overall row, as in insights.kpis
TIME_COLUMNS = ("scheduled_for", "queued_at", "started_at", "ended_at", "updated_at")
AGGREGATE_COLUMNS = [
    "runs", "finished", "succeeded", "failed", "success_rate", "error_rate",
    "duration_p50", "duration_p95", "duration_max", "queue_p50", "queue_mean",
    "records_in", "records_out", "records_rejected", "records_per_minute", "records_per_run",
    "rejected_rate", "retries", "retried_runs", "cost_usd",
]  # fmt: skip


@dataclass(frozen=True)
class RunDetail:
    """One run (the ``runs`` row as a dict) with its steps, every attempt, in start order."""

    run: dict[str, Any]
    steps: pd.DataFrame


def _window(start: datetime, end: datetime, pipeline: str | None):
    cond = [runs.c.started_at >= start, runs.c.started_at < end]
    if pipeline is not None:
        cond.append(runs.c.pipeline == pipeline)
    return cond


def _frame(rows, columns) -> pd.DataFrame:
    records = [tuple(r) for r in rows] if rows and not isinstance(rows[0], dict | sa.RowMapping) else [dict(r) for r in rows]
    frame = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    for c in columns:
        if c in TIME_COLUMNS or c.endswith("_at"):
            frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def runs_frame(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    pipeline: str | None = None,
    statuses: tuple[str, ...] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Runs that started in ``[start, end)`` (one pipeline or all), every column, by start time.
    ``limit`` keeps the newest ``limit`` runs."""
    q = sa.select(runs).where(*_window(start, end, pipeline))
    if statuses:
        q = q.where(runs.c.status.in_(statuses))
    if limit is not None:
        q = q.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    frame = _frame(conn.execute(q).mappings().all(), [c.name for c in runs.c])
    return frame.sort_values(["started_at", "run_id"], kind="stable").reset_index(drop=True)


def recent_failures(
    conn: Connection, *, since: datetime, until: datetime | None = None, pipeline: str | None = None, limit: int = 50,
    accounts: Sequence[str] | None = None, regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """FAILED and TIMED_OUT runs started since ``since`` (of ``accounts`` and ``regions`` when given), newest first."""
    end = until or datetime.max.replace(tzinfo=since.tzinfo)
    placed = [runs.c.account.in_(list(accounts))] if accounts else []
    placed += [runs.c.region.in_(list(regions))] if regions else []
    q = (
        sa.select(runs)
        .where(*_window(since, end, pipeline), runs.c.status.in_(FAILURES), *placed)
        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        .limit(limit)
    )
    return _frame(conn.execute(q).mappings().all(), [c.name for c in runs.c])


def run_detail(conn: Connection, run_id: str) -> RunDetail | None:
    """The run and its steps, or None when there is no such run."""
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if row is None:
        return None
    steps = conn.execute(
        sa.select(run_steps)
        .where(run_steps.c.run_id == run_id)
        .order_by(run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt)
    ).mappings().all()
    return RunDetail(run=dict(row), steps=_frame(steps, [c.name for c in run_steps.c]))


def recovery_runs(conn: Connection, start: datetime, end: datetime, *, pipeline: str | None = None) -> pd.DataFrame:
    """The narrow frame ``insights.kpis.time_to_recover`` needs: failed and succeeded runs
    (pipeline, status, started_at, ended_at) from ``start`` to ``end``."""
    r = runs.c
    q = sa.select(r.pipeline, r.status, r.started_at, r.ended_at).where(
        *_window(start, end, pipeline), r.status.in_((*FAILURES, SUCCEEDED))
    )
    return _frame(conn.execute(q).all(), ["pipeline", "status", "started_at", "ended_at"])


_LAST_OK_BATCH = 200  # per-pipeline lookups per statement


def freshness_runs(
    conn: Connection, *, now: datetime, lookback: timedelta = timedelta(days=2), pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Runs ``insights.freshness`` needs: every run started in ``[now - lookback, now]`` plus each
    pipeline's last successful run, however old (pipeline, status, scheduled_for, started_at,
    ended_at). With ``pipelines``, only those pipelines, and each last success is one descent of
    the ``(pipeline, started_at)`` index instead of a scan of every success ever stored."""
    r = runs.c
    names = ["pipeline", "status", "scheduled_for", "started_at", "ended_at"]
    cols = [r.pipeline, r.status, r.scheduled_for, r.started_at, r.ended_at]
    recent = sa.select(*cols).where(r.started_at >= now - lookback, r.started_at <= now)
    if pipelines is None:
        last_ok = (
            sa.select(r.pipeline, sa.func.max(r.started_at).label("started_at"))
            .where(r.status == SUCCEEDED, r.started_at <= now)
            .group_by(r.pipeline)
            .subquery()
        )
        older = (
            sa.select(*cols)
            .join(last_ok, sa.and_(r.pipeline == last_ok.c.pipeline, r.started_at == last_ok.c.started_at))
            .where(r.status == SUCCEEDED)
        )
        rows: list[tuple[Any, ...]] = [tuple(row) for row in conn.execute(sa.union(recent, older))]
    else:
        wanted = sorted(set(pipelines))
        rows = [tuple(row) for row in conn.execute(recent.where(r.pipeline.in_(wanted)))] if wanted else []
        inner = runs.alias("last_ok")
        # one select per pipeline, each with an uncorrelated MAX (one index descent); a MAX
        # correlated to the outer row is evaluated once per stored success instead. In batches:
        # SQLite refuses a compound SELECT of more than 500 terms.
        for at in range(0, len(wanted), _LAST_OK_BATCH):
            rows += map(tuple, conn.execute(sa.union_all(*[
                sa.select(*cols).where(
                    r.pipeline == name,
                    r.status == SUCCEEDED,
                    r.started_at
                    == sa.select(sa.func.max(inner.c.started_at))
                    .where(inner.c.pipeline == name, inner.c.status == SUCCEEDED, inner.c.started_at <= now)
                    .scalar_subquery(),
                )
                for name in wanted[at:at + _LAST_OK_BATCH]
            ])))
        rows = list(dict.fromkeys(rows))  # a recent success is also the last one
    frame = _frame(rows, names)
    return frame.sort_values(["pipeline", "started_at"], kind="stable").reset_index(drop=True)


def run_cost_summary(conn: Connection, start: datetime, end: datetime, *, pipeline: str | None = None) -> pd.DataFrame:
    """Per pipeline, in SQL: the columns of ``insights.costs.run_cost_summary``."""
    r = runs.c
    ok = r.status == SUCCEEDED
    cost = sa.func.coalesce(r.cost_usd, 0.0)
    retry = sa.or_(r.attempt > 1, r.trigger == "retry")
    q = (
        sa.select(
            r.pipeline,
            sa.func.count().label("runs"),
            sa.func.sum(sa.case((ok, 1), else_=0)).label("succeeded"),
            sa.func.sum(sa.case((r.status.in_(FAILURES), 1), else_=0)).label("failed"),
            sa.func.sum(sa.case((ok, sa.func.coalesce(r.records_out, 0)), else_=0)).label("records_out"),
            sa.func.sum(cost).label("cost_usd"),
            sa.func.sum(sa.case((r.status.in_(FAILURES), cost), else_=0.0)).label("failed_cost_usd"),
            sa.func.sum(sa.case((retry, cost), else_=0.0)).label("retry_cost_usd"),
        )
        .where(*_window(start, end, pipeline))
        .group_by(r.pipeline)
        .order_by(r.pipeline)
    )
    cols = ["pipeline", "runs", "succeeded", "failed", "records_out", "cost_usd", "failed_cost_usd", "retry_cost_usd"]
    frame = pd.DataFrame(conn.execute(q).all(), columns=cols)
    for c in cols[1:4]:
        frame[c] = frame[c].astype(int)
    for c in cols[4:]:
        frame[c] = frame[c].astype(float)
    return frame


def kpi_aggregates(conn: Connection, start: datetime, end: datetime, *, pipeline: str | None = None) -> pd.DataFrame:
    """KPIs of runs started in ``[start, end)`` per pipeline plus the ``ALL`` row, indexed by
    pipeline, columns ``AGGREGATE_COLUMNS`` (same definitions as ``insights.kpis``).

    Counts and sums are SQL aggregates on both databases. Percentiles: ``percentile_cont`` on
    PostgreSQL (one pass with GROUPING SETS for the per-pipeline and overall rows); on SQLite
    the duration and queue seconds of the window are fetched as bare floats (computed in SQL,
    so no timestamp parsing) and the same linear percentiles are taken with numpy. For windows
    of months over millions of runs prefer ``insights.kpis.rollup_kpis`` over ``run_daily``."""
    pg = conn.dialect.name == "postgresql"
    r = runs.c
    fin = r.status.in_(TERMINAL)
    ok = r.status == SUCCEEDED
    dur, queue = _seconds(pg)
    cols = [
        sa.func.count().label("runs"),
        sa.func.count().filter(fin).label("finished"),
        sa.func.count().filter(ok).label("succeeded"),
        sa.func.count().filter(r.status.in_(FAILURES)).label("failed"),
        sa.func.max(dur).filter(fin).label("duration_max"),
        sa.func.avg(queue).label("queue_mean"),
        sa.func.coalesce(sa.func.sum(r.records_in).filter(fin), 0).label("records_in"),
        sa.func.coalesce(sa.func.sum(r.records_out).filter(fin), 0).label("records_out"),
        sa.func.coalesce(sa.func.sum(r.records_rejected).filter(fin), 0).label("records_rejected"),
        sa.func.sum(r.records_out).filter(ok).label("ok_records"),
        sa.func.sum(dur).filter(ok).label("ok_seconds"),
        sa.func.avg(r.records_out).filter(ok).label("records_per_run"),
        sa.func.coalesce(sa.func.sum(r.retries), 0).label("retries"),
        sa.func.count().filter(r.attempt > 1).label("retried_runs"),
        sa.func.coalesce(sa.func.sum(r.cost_usd), 0.0).label("cost_usd"),
    ]
    where = _window(start, end, pipeline)
    if pg:
        cols += [
            sa.func.percentile_cont(0.5).within_group(dur).filter(fin).label("duration_p50"),
            sa.func.percentile_cont(0.95).within_group(dur).filter(fin).label("duration_p95"),
            sa.func.percentile_cont(0.5).within_group(queue).label("queue_p50"),
        ]
        q = sa.select(r.pipeline, *cols).where(*where).group_by(
            sa.func.grouping_sets(sa.tuple_(r.pipeline), sa.tuple_())
        )
        frame = pd.DataFrame([dict(x) for x in conn.execute(q).mappings().all()])
        if frame.empty:
            return pd.DataFrame(columns=AGGREGATE_COLUMNS).rename_axis("pipeline")
        frame["pipeline"] = frame["pipeline"].fillna(ALL)  # pipeline is NOT NULL: NULL = overall
    else:
        per = conn.execute(sa.select(r.pipeline, *cols).where(*where).group_by(r.pipeline)).mappings().all()
        overall = conn.execute(sa.select(*cols).where(*where)).mappings().one()  # an aggregate: always one row
        frame = pd.DataFrame([dict(x) for x in per] + [{"pipeline": ALL, **dict(overall)}])
        frame = frame.merge(_sqlite_percentiles(conn, where, dur, queue, fin), on="pipeline", how="left")
    frame = frame.set_index("pipeline")
    order = sorted(i for i in frame.index if i != ALL) + [ALL]
    out = _finish(frame.loc[order])
    out.index.name = "pipeline"
    return out[AGGREGATE_COLUMNS]


def _seconds(pg: bool):
    """SQL expressions for the run's duration and queue time in seconds."""
    r = runs.c
    span: sa.ColumnElement[Any]
    queue: sa.ColumnElement[Any]
    if pg:
        span = sa.extract("epoch", r.ended_at - r.started_at)
        queue = sa.extract("epoch", r.started_at - r.queued_at)
    else:
        # julianday differences carry ~5e-5 s of float noise: round to the millisecond
        span = sa.func.round((sa.func.julianday(r.ended_at) - sa.func.julianday(r.started_at)) * 86400.0, 3)
        queue = sa.func.round((sa.func.julianday(r.started_at) - sa.func.julianday(r.queued_at)) * 86400.0, 3)
    return sa.func.coalesce(r.duration_seconds, span), queue


def _sqlite_percentiles(conn, where, dur, queue, fin) -> pd.DataFrame:
    """SQLite has no percentile function: fetch the window's duration and queue seconds as bare
    floats (computed in SQL) and take numpy's linear percentiles, as percentile_cont does
    (ranking with window functions in SQLite is slower than this fetch)."""
    r = runs.c
    rows = conn.execute(sa.select(r.pipeline, sa.case((fin, 1), else_=0), dur, queue).where(*where)).all()
    # plain tuples: pandas probes every SQLAlchemy Row with hasattr, which is slow
    raw = pd.DataFrame.from_records([tuple(x) for x in rows], columns=["pipeline", "fin", "dur", "queue"])
    raw[["dur", "queue"]] = raw[["dur", "queue"]].astype(float)
    out = []
    groups = [(name, g) for name, g in raw.groupby("pipeline", sort=True)] + [(ALL, raw)]
    for name, g in groups:
        d = g.loc[g["fin"] == 1, "dur"].dropna().to_numpy()
        qv = g["queue"].dropna().to_numpy()
        p50, p95 = np.percentile(d, [50, 95]) if len(d) else (np.nan, np.nan)
        out.append({"pipeline": name, "duration_p50": p50, "duration_p95": p95,
                    "queue_p50": np.percentile(qv, 50) if len(qv) else np.nan})
    return pd.DataFrame(out, columns=["pipeline", "duration_p50", "duration_p95", "queue_p50"])


def _finish(f: pd.DataFrame) -> pd.DataFrame:
    f = f.astype({c: float for c in f.columns})
    fin = f["finished"]
    f["success_rate"] = np.where(fin > 0, f["succeeded"] / fin.where(fin > 0, 1), np.nan)
    f["error_rate"] = np.where(fin > 0, f["failed"] / fin.where(fin > 0, 1), np.nan)
    mins = f["ok_seconds"] / 60.0
    f["records_per_minute"] = np.where(mins > 0, f["ok_records"] / mins.where(mins > 0, 1), np.nan)
    rin = f["records_in"]
    f["rejected_rate"] = np.where(rin > 0, f["records_rejected"] / rin.where(rin > 0, 1), np.nan)
    for c in ("runs", "finished", "succeeded", "failed", "retried_runs"):
        f[c] = f[c].astype(int)
    f = f.astype(object).where(f.notna(), None)
    return f
