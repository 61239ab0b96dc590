"""CloudWatch metric series and points: the natural key, idempotent writes, reads.

A series is identified by ``series_key`` (the collector's canonical JSON of namespace, metric
name, sorted dimensions, statistic and period: ``collectors.cloudwatch.series_key``). ``write_metrics`` upserts the series (the database assigns
``series_id``), then upserts the points by ``(series_id, ts)``: a point fetched again with the
same value writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import metric_points, metric_series
from store.writes import upsert

__all__ = ["known_series", "metric_points_frame", "write_metrics"]


def known_series(conn: Connection, keys: Iterable[str] | None = None) -> dict[str, int]:
    """``{series_key: series_id}`` for ``keys`` (all series when None)."""
    c = metric_series.c
    if keys is None:
        return {k: int(i) for k, i in conn.execute(sa.select(c.series_key, c.series_id))}
    out: dict[str, int] = {}
    keys = list(keys)
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        out.update({k: int(v) for k, v in conn.execute(sa.select(c.series_key, c.series_id).where(c.series_key.in_(chunk)))})
    return out


def write_metrics(
    conn: Connection,
    series: list[dict],
    points: list[tuple[str, datetime, float]],
    *,
    now: datetime | None = None,
) -> int:
    """Upsert ``series`` rows (``metric_series`` columns with ``series_key``) and their points
    ``(series_key, ts, value)``; returns rows inserted or changed."""
    changed = upsert(conn, metric_series, series, key=["series_key"], now=now) if series else 0
    if not points:
        return changed
    ids = known_series(conn, {k for k, _, _ in points})
    missing = {k for k, _, _ in points} - set(ids)
    if missing:
        raise ValueError(f"points for {len(missing)} series that are not in metric_series, e.g. {sorted(missing)[0]}")
    rows = [{"series_id": ids[k], "ts": ts, "value": float(v)} for k, ts, v in points]
    return changed + upsert(conn, metric_points, rows)


def metric_points_frame(conn: Connection, *, namespace: str | None = None, metric: str | None = None,
                        pipeline: str | None = None, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Points joined with their series, ordered by series and time."""
    s, p = metric_series.c, metric_points.c
    q = sa.select(s.namespace, s.metric_name, s.dimensions, s.stat, s.period_seconds, s.pipeline, s.stage, p.ts, p.value).join_from(
        metric_points, metric_series, p.series_id == s.series_id
    )
    for col, val in ((s.namespace, namespace), (s.metric_name, metric), (s.pipeline, pipeline)):
        if val is not None:
            q = q.where(col == val)
    if start is not None:
        q = q.where(p.ts >= start)
    if end is not None:
        q = q.where(p.ts < end)
    q = q.order_by(s.series_id, p.ts)
    cols = ["namespace", "metric_name", "dimensions", "stat", "period_seconds", "pipeline", "stage", "ts", "value"]
    return pd.DataFrame(conn.execute(q).all(), columns=cols)
