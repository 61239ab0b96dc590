"""Collector bookkeeping: watermarks, pass records and named locks.

A collector's rows and its watermark are written in one transaction (the caller's), so a pass
killed half-way leaves both as they were. Locks are rows with an expiry, which works the same on
SQLite and PostgreSQL: ``acquire_lock`` wins only when the row is absent or expired.
"""

from __future__ import annotations

import json
import os
import socket
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
    "lock_holder",
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
    """Take the named lock for ``ttl`` unless someone else holds an unexpired one.

    A lock whose owner (``host:pid:...``) is a process of this host that no longer runs is
    taken over at once, and the passes its owner left ``running`` are marked ``interrupted``."""
    now = now.astimezone(UTC)
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at <= now))
        row = conn.execute(sa.select(locks.c.owner, locks.c.acquired_at).where(locks.c.name == name)).first()
        held = row.owner if row is not None else None
        if row is not None and held != owner and owner_is_dead(row.owner):
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == row.owner))
            _mark_interrupted(conn, name, row.owner, row.acquired_at, now)
            held = None
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


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (``host:pid:...``) names a process of this host that no longer runs."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another host (or a foreign owner): only its expiry frees it
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's process)
    return False


def _mark_interrupted(conn: Connection, name: str, owner: str, since: datetime, now: datetime) -> None:
    source = name.removeprefix("job:")
    c = collector_runs.c
    conn.execute(
        collector_runs.update()
        .where(c.source == source, c.status == "running", c.started_at >= since)
        .values(status="interrupted", ended_at=now, error=f"interrupted: its process {describe_owner(owner)} died")
    )


def describe_owner(owner: str) -> str:
    """``pid N on host H`` for an owner ``host:pid:...``."""
    parts = owner.split(":")
    return f"pid {parts[1]} on host {parts[0]}" if len(parts) >= 2 else owner


def lock_holder(engine: Engine, name: str) -> str | None:
    """Who holds the named lock, for messages: ``pid N on host H since T UTC``; None if free."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(locks.c.owner, locks.c.acquired_at).where(locks.c.name == name)).first()
    if row is None:
        return None
    return f"{describe_owner(row.owner)} since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC"


def release_lock(engine: Engine, name: str, owner: str) -> None:
    """Give up the named lock if ``owner`` holds it."""
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))
