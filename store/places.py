"""The ``places`` table: which (account, region) pairs runs and cost rows came from, per day.

The dashboard's account and region filters list what was seen in the last two weeks; reading
that from ``runs`` and ``cost_daily`` scanned every run and cost row of the two weeks (at 1M
runs and a 30,000-row daily bill, 0.2 s a list), so it grew with runs per day and the bill's
breadth. ``refresh_places`` recomputes whole days from the rows, in the caller's transaction:
``store.rollups.refresh_run_daily`` calls it for runs, ``store.costs.replace_cost_rows`` for
cost rows. Rows written another way (a bare ``upsert`` into ``runs`` or ``cost_daily``) are
listed once their days are refreshed, as ``run_daily`` is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import cost_daily, places, runs

__all__ = ["KINDS", "refresh_places", "run_day"]

KINDS = ("runs", "cost")


def run_day(conn: Connection) -> sa.ColumnElement:
    """A run's day: the UTC date of ``runs.started_at`` (the day ``run_daily`` rolls it up on)."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", runs.c.started_at), sa.Date)
    # SQLite keeps naive UTC text: its date() is the UTC date, as text a Date column reads
    return sa.func.date(runs.c.started_at)


def refresh_places(conn: Connection, kind: str, start: date, end: date) -> None:
    """Recompute the places of ``kind`` (runs or cost) for ``start <= day < end``."""
    if kind not in KINDS:
        raise ValueError(f"refresh_places: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "runs":
        r = runs.c
        found = sa.select(run_day(conn).label("day"), sa.literal(kind).label("kind"), r.account, r.region).where(
            r.started_at >= _midnight(start), r.started_at < _midnight(end))
    else:
        c = cost_daily.c
        found = sa.select(c.day, sa.literal(kind).label("kind"), c.account, c.region).where(c.day >= start, c.day < end)
    conn.execute(places.delete().where(places.c.kind == kind, places.c.day >= start, places.c.day < end))
    conn.execute(places.insert().from_select(["day", "kind", "account", "region"], found.distinct()))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)
