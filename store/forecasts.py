"""Forecast snapshots: save one with its points and backtest metrics, read the latest, and
read past points so they can be scored against what was actually spent.

A snapshot is one forecast made at ``created_at`` by ``method`` (``"pipepulse"``, or ``"aws"``
for Cost Explorer's own forecast stored by the CE collector) for ``subject`` (``"total"``,
``"pipeline:orders"``, ...). At most one snapshot per (method, subject, UTC day) is kept: a
later one the same day replaces it (an identical one writes nothing), so an hourly scheduler
does not pile up near-identical rows while each day's forecast stays for scoring. Both
pipepulse's forecasts and the Cost Explorer collector's are stored here. ``level`` is a
fraction (0.8 for an 80% interval).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import forecast_points, forecast_snapshots
from store.writes import inserted_id

__all__ = ["latest_forecast", "latest_snapshots", "points_to_score", "save_forecast", "save_snapshot", "snapshot_points"]

SNAPSHOT_COLUMNS = [c.name for c in forecast_snapshots.c]


def save_snapshot(
    conn: Connection,
    *,
    created_at: datetime,
    method: str,
    subject: str,
    level: float,
    points: pd.DataFrame,
    **fields: Any,
) -> int:
    """Store a snapshot and its points (``day`` or ``date``, ``mean``, ``lower``, ``upper``);
    returns its id. ``fields``: any other ``forecast_snapshots`` column (train_start,
    train_end, mape, mase, bias, coverage, backtest_points, month_end_mean/lower/upper,
    budget, budget_cross_day, and the chosen ``model`` with its ``backtest_mae`` beside
    ``mae_last_value`` and ``mae_seasonal_naive``)."""
    return _save(conn, created_at, method, subject, level, points, fields)[0]


def save_forecast(
    conn: Connection,
    *,
    created_at: datetime,
    method: str,
    subject: str,
    level: float,
    points: pd.DataFrame,
    **fields: Any,
) -> int:
    """``save_snapshot``, returning the rows written instead: 0 when the day's snapshot is
    already identical (a collector re-reading the same answer writes nothing)."""
    return _save(conn, created_at, method, subject, level, points, fields)[1]


def _save(conn, created_at, method, subject, level, points, fields) -> tuple[int, int]:
    unknown = set(fields) - set(SNAPSHOT_COLUMNS)
    if unknown:
        raise ValueError(f"forecast_snapshots has no column(s) {sorted(unknown)}")
    values = {"level": float(level), **{k: _plain(v) for k, v in fields.items()}}
    day_col = "day" if "day" in points.columns else "date"
    pts = sorted(
        (
            {"day": _as_date(p[day_col]), "mean": float(p["mean"]), "lower": _plain(p.get("lower")), "upper": _plain(p.get("upper"))}
            for p in points.to_dict("records")
        ),
        key=lambda p: p["day"],
    )
    day_start = datetime.combine(created_at.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    s = forecast_snapshots.c
    same_day = conn.execute(
        sa.select(forecast_snapshots).where(
            s.method == method, s.subject == subject, s.created_at >= day_start, s.created_at < day_start + timedelta(days=1)
        )
    ).mappings().all()
    if len(same_day) == 1:
        old = same_day[0]
        old_pts = snapshot_points(conn, old["snapshot_id"]).to_dict("records")
        if all(_close(old[k], v) for k, v in values.items()) and [
            (p["day"], p["mean"], _plain(p["lower"]), _plain(p["upper"])) for p in old_pts
        ] == [(p["day"], p["mean"], p["lower"], p["upper"]) for p in pts]:
            return int(old["snapshot_id"]), 0
    ids = [r["snapshot_id"] for r in same_day]
    if ids:
        conn.execute(forecast_points.delete().where(forecast_points.c.snapshot_id.in_(ids)))
        conn.execute(forecast_snapshots.delete().where(s.snapshot_id.in_(ids)))
    result = conn.execute(
        forecast_snapshots.insert().values(created_at=created_at, method=method, subject=subject, **values)
    )
    snapshot_id = inserted_id(result)
    if pts:
        conn.execute(forecast_points.insert(), [{"snapshot_id": snapshot_id, **p} for p in pts])
    return snapshot_id, 1 + len(pts)


def latest_forecast(conn: Connection, method: str, subject: str = "total") -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The newest snapshot of ``method`` for ``subject`` (a dict) and its points, or None."""
    snaps = latest_snapshots(conn, method=method, subject=subject)
    if snaps.empty:
        return None
    snap = {str(k): v for k, v in snaps.iloc[0].to_dict().items()}
    return snap, snapshot_points(conn, int(snap["snapshot_id"]))


def latest_snapshots(conn: Connection, *, method: str | None = None, subject: str | None = None) -> pd.DataFrame:
    """The newest snapshot of each (method, subject), every ``forecast_snapshots`` column."""
    s = forecast_snapshots.c
    newest = sa.select(s.method, s.subject, sa.func.max(s.created_at).label("created_at")).group_by(s.method, s.subject)
    if method is not None:
        newest = newest.where(s.method == method)
    if subject is not None:
        newest = newest.where(s.subject == subject)
    last = newest.subquery()
    q = (
        sa.select(forecast_snapshots)
        .join(last, sa.and_(s.method == last.c.method, s.subject == last.c.subject, s.created_at == last.c.created_at))
        .order_by(s.method, s.subject)
    )
    return _snapshots(conn.execute(q).mappings().all())


def snapshot_points(conn: Connection, snapshot_id: int) -> pd.DataFrame:
    """The points of one snapshot: ``day``, ``mean``, ``lower``, ``upper``, by day."""
    p = forecast_points.c
    rows = conn.execute(
        sa.select(p.day, p.mean, p.lower, p.upper).where(p.snapshot_id == snapshot_id).order_by(p.day)
    ).all()
    frame = pd.DataFrame(rows, columns=["day", "mean", "lower", "upper"])
    frame["day"] = frame["day"].map(_as_date)
    return frame


def points_to_score(
    conn: Connection, *, until: date, since: date | None = None, method: str | None = None, subject: str | None = None
) -> pd.DataFrame:
    """Points forecast for days ``<= until`` (and ``>= since``), with their snapshot's method,
    subject, created_at and level: ``snapshot_id, method, subject, created_at, level, day,
    mean, lower, upper``. Only days on or after the snapshot's creation day count (true forecasts)."""
    s, p = forecast_snapshots.c, forecast_points.c
    q = (
        sa.select(s.snapshot_id, s.method, s.subject, s.created_at, s.level, p.day, p.mean, p.lower, p.upper)
        .join(forecast_points, p.snapshot_id == s.snapshot_id)
        .where(p.day <= until)
        .order_by(s.method, s.subject, s.created_at, p.day)
    )
    if since is not None:
        q = q.where(p.day >= since)
    if method is not None:
        q = q.where(s.method == method)
    if subject is not None:
        q = q.where(s.subject == subject)
    cols = ["snapshot_id", "method", "subject", "created_at", "level", "day", "mean", "lower", "upper"]
    frame = pd.DataFrame(conn.execute(q).all(), columns=cols)
    frame["day"] = frame["day"].map(_as_date)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    if not frame.empty:
        made = frame["created_at"].dt.date
        frame = frame[frame["day"] >= made].reset_index(drop=True)
    return frame


def _snapshots(rows) -> pd.DataFrame:
    frame = pd.DataFrame([dict(r) for r in rows], columns=SNAPSHOT_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    for c in ("train_start", "train_end", "budget_cross_day"):
        frame[c] = frame[c].map(lambda v: None if v is None or pd.isna(v) else _as_date(v))
    return frame


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, datetime):
        a = a.date()
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def _as_date(v: Any) -> date:
    if isinstance(v, datetime | pd.Timestamp):
        return v.date()
    if isinstance(v, str):
        return date.fromisoformat(v[:10])
    return v


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and pd.isna(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v
