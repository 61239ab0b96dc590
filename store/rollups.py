"""The daily run rollup (``run_daily``) that the dashboard reads instead of raw runs.

``refresh_run_daily(conn, days=...)`` recomputes whole days from ``runs`` (day = UTC date of
``started_at``) inside the caller's transaction, so collectors refresh exactly the days whose
runs they stored (and, with them, those days' ``places``: where runs came from, which the
dashboard's account and region lists read). Percentiles are continuous (linear interpolation):
``percentile_cont`` on PostgreSQL, ``pandas.Series.quantile`` on SQLite; both give the same
numbers. Daily percentiles cannot be combined into weekly ones; read raw runs for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import FAILURES, SUCCEEDED
from store.places import refresh_places, run_day
from store.schema import run_daily, runs
from store.writes import upsert

__all__ = ["refresh_run_daily", "run_daily_frame"]


def _bounds(days: Iterable[date]) -> tuple[datetime, datetime]:
    ds = sorted(days)
    return datetime.combine(ds[0], time(), UTC), datetime.combine(ds[-1] + timedelta(days=1), time(), UTC)


def refresh_run_daily(conn: Connection, *, days: set[date], now: datetime | None = None) -> int:
    """Recompute ``run_daily`` for ``days``; returns the rows written."""
    if not days:
        return 0
    start, end = _bounds(days)
    frame = _compute_pg(conn, start, end) if conn.dialect.name == "postgresql" else _compute_pandas(conn, start, end)
    frame = frame[frame["day"].isin(days)] if not frame.empty else frame
    conn.execute(run_daily.delete().where(run_daily.c.day.in_(sorted(days))))
    refresh_places(conn, "runs", min(days), max(days) + timedelta(days=1))
    if frame.empty:
        return 0
    return upsert(conn, run_daily, frame, now=now or datetime.now(UTC))


def _compute_pg(conn: Connection, start: datetime, end: datetime) -> pd.DataFrame:
    r = runs.c
    day = run_day(conn).label("day")
    failed = r.status.in_(FAILURES)
    q = (
        sa.select(
            day,
            r.pipeline,
            sa.func.count().label("runs"),
            sa.func.count().filter(r.status == SUCCEEDED).label("succeeded"),
            sa.func.count().filter(failed).label("failed"),
            sa.cast(sa.func.coalesce(sa.func.sum(r.retries), 0), sa.Integer).label("retries"),
            sa.func.percentile_cont(0.5).within_group(r.duration_seconds).label("duration_p50"),
            sa.func.percentile_cont(0.95).within_group(r.duration_seconds).label("duration_p95"),
            sa.func.max(r.duration_seconds).label("duration_max"),
            sa.func.sum(r.duration_seconds).label("duration_sum"),
            sa.cast(sa.func.sum(sa.extract("epoch", r.started_at - r.queued_at)), sa.Float).label("queue_seconds_sum"),
            # sum(bigint) is numeric in PostgreSQL: cast back so values are ints, not Decimals
            sa.cast(sa.func.sum(r.records_in), sa.BigInteger).label("records_in"),
            sa.cast(sa.func.sum(r.records_out), sa.BigInteger).label("records_out"),
            sa.cast(sa.func.sum(r.records_rejected), sa.BigInteger).label("records_rejected"),
            sa.func.sum(r.cost_usd).label("cost_usd"),
            sa.func.sum(r.cost_usd).filter(failed).label("failed_cost_usd"),
        )
        .where(r.started_at >= start, r.started_at < end)
        .group_by(day, r.pipeline)
    )
    rows = conn.execute(q).mappings().all()
    return pd.DataFrame(rows, columns=[c.name for c in run_daily.c if c.name != "updated_at"])


def _compute_pandas(conn: Connection, start: datetime, end: datetime) -> pd.DataFrame:
    r = runs.c
    q = sa.select(
        r.pipeline, r.status, r.retries, r.started_at, r.queued_at, r.duration_seconds,
        r.records_in, r.records_out, r.records_rejected, r.cost_usd,
    ).where(r.started_at >= start, r.started_at < end)
    data = pd.DataFrame(conn.execute(q).mappings().all(), columns=[
        "pipeline", "status", "retries", "started_at", "queued_at", "duration_seconds",
        "records_in", "records_out", "records_rejected", "cost_usd"])
    cols = [c.name for c in run_daily.c if c.name != "updated_at"]
    if data.empty:
        return pd.DataFrame(columns=cols)
    data["day"] = [ts.astimezone(UTC).date() for ts in data["started_at"]]
    data["failed_flag"] = data["status"].isin(FAILURES)
    data["queue"] = [
        (s - q).total_seconds() if s is not None and q is not None and not pd.isna(q) else None
        for s, q in zip(data["started_at"], data["queued_at"], strict=True)
    ]
    out = []
    for (day, pipeline), g in data.groupby(["day", "pipeline"], sort=True):
        dur = pd.to_numeric(g["duration_seconds"], errors="coerce").dropna()
        queue = pd.to_numeric(g["queue"], errors="coerce").dropna()
        cost = pd.to_numeric(g["cost_usd"], errors="coerce")
        out.append({
            "day": day,
            "pipeline": pipeline,
            "runs": len(g),
            "succeeded": int((g["status"] == SUCCEEDED).sum()),
            "failed": int(g["failed_flag"].sum()),
            "retries": int(pd.to_numeric(g["retries"]).fillna(0).sum()),
            "duration_p50": float(dur.quantile(0.5)) if len(dur) else None,
            "duration_p95": float(dur.quantile(0.95)) if len(dur) else None,
            "duration_max": float(dur.max()) if len(dur) else None,
            "duration_sum": float(dur.sum()) if len(dur) else None,
            "queue_seconds_sum": float(queue.sum()) if len(queue) else None,
            "records_in": _isum(g["records_in"]),
            "records_out": _isum(g["records_out"]),
            "records_rejected": _isum(g["records_rejected"]),
            "cost_usd": float(cost.sum()) if cost.notna().any() else None,
            "failed_cost_usd": float(cost[g["failed_flag"]].sum()) if cost[g["failed_flag"]].notna().any() else None,
        })
    return pd.DataFrame(out, columns=cols)


def _isum(col: pd.Series) -> int | None:
    vals = pd.to_numeric(col, errors="coerce").dropna()
    return int(vals.sum()) if len(vals) else None


def run_daily_frame(conn: Connection, start: date, end: date, *, pipeline: str | None = None) -> pd.DataFrame:
    """Rollup rows for ``start <= day <= end``, ordered by day and pipeline."""
    q = sa.select(run_daily).where(run_daily.c.day >= start, run_daily.c.day <= end).order_by(run_daily.c.day, run_daily.c.pipeline)
    if pipeline is not None:
        q = q.where(run_daily.c.pipeline == pipeline)
    return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in run_daily.c])
