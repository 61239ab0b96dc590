"""Collector bookkeeping: watermarks, pass records and named locks.

A collector's rows and its watermark are written in one transaction (the caller's), so a pass
killed half-way leaves both as they were. Locks are rows with an expiry, which works the same on
SQLite and PostgreSQL: ``acquire_lock`` wins only when the row is absent or expired.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.schema import collector_runs, locks, watermarks
from store.writes import inserted_id, upsert

__all__ = [
    "acquire_lock",
    "collector_runs_frame",
    "finish_collector_run",
    "first_pass_since",
    "get_watermark",
    "release_lock",
    "set_watermark",
    "start_collector_run",
]


def get_watermark(conn: Connection, source: str, key: str = "") -> str | None:
    """The stored watermark for ``(source, key)``, or None."""
    return conn.execute(
        sa.select(watermarks.c.value).where(watermarks.c.source == source, watermarks.c.key == key)
    ).scalar_one_or_none()


def set_watermark(conn: Connection, source: str, value: str, key: str = "", *, now: datetime | None = None) -> None:
    """Store a watermark; call inside the same transaction as the rows it covers."""
    upsert(conn, watermarks, [{"source": source, "key": key, "value": value}], now=now)


def start_collector_run(
    engine: Engine,
    source: str,
    *,
    now: datetime,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> int:
    """Record that a pass began (committed at once, so a crashed pass stays visible)."""
    with engine.begin() as conn:
        result = conn.execute(
            collector_runs.insert().values(
                source=source,
                started_at=now,
                status="running",
                window_start=window_start,
                window_end=window_end,
            )
        )
        return inserted_id(result)


def finish_collector_run(
    conn: Connection,
    run_id: int,
    *,
    now: datetime,
    status: str,
    rows_written: int = 0,
    api_calls: int = 0,
    api_cost_usd: float = 0.0,
    error: str | None = None,
    details: dict[str, Any] | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> None:
    """Close a pass record with its outcome, rows, API calls and their price."""
    values: dict[str, Any] = dict(
        ended_at=now,
        status=status,
        rows_written=rows_written,
        api_calls=api_calls,
        api_cost_usd=api_cost_usd,
        error=error,
        details=json.dumps(details or {}, sort_keys=True, default=str),
    )
    if window_start is not None:
        values["window_start"] = window_start
    if window_end is not None:
        values["window_end"] = window_end
    conn.execute(collector_runs.update().where(collector_runs.c.collector_run_id == run_id).values(**values))


def collector_runs_frame(conn: Connection, *, since: datetime | None = None, source: str | None = None) -> pd.DataFrame:
    """Pass records, newest first."""
    q = sa.select(collector_runs).order_by(collector_runs.c.started_at.desc(), collector_runs.c.collector_run_id.desc())
    if since is not None:
        q = q.where(collector_runs.c.started_at >= since)
    if source is not None:
        q = q.where(collector_runs.c.source == source)
    rows = conn.execute(q).mappings().all()
    return pd.DataFrame(rows, columns=[c.name for c in collector_runs.c])


def first_pass_since(conn: Connection, source: str, since: datetime) -> dict[str, Any] | None:
    """The first succeeded pass of ``source`` that started at or after ``since``, or None."""
    c = collector_runs.c
    q = (
        sa.select(collector_runs)
        .where(c.source == source, c.status == "succeeded", c.started_at >= since)
        .order_by(c.started_at, c.collector_run_id)
        .limit(1)
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row is not None else None


def acquire_lock(engine: Engine, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take the named lock for ``ttl`` unless someone else holds an unexpired one."""
    now = now.astimezone(UTC)
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at <= now))
        held = conn.execute(sa.select(locks.c.owner).where(locks.c.name == name)).scalar_one_or_none()
        if held is not None and held != owner:
            return False
        if held is None:
            try:
                with conn.begin_nested():
                    conn.execute(locks.insert().values(name=name, owner=owner, acquired_at=now, expires_at=now + ttl))
            except sa.exc.IntegrityError:
                return False
        else:
            conn.execute(locks.update().where(locks.c.name == name).values(expires_at=now + ttl))
    return True


def release_lock(engine: Engine, name: str, owner: str) -> None:
    """Give up the named lock if ``owner`` holds it."""
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))
