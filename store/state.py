"""Collector bookkeeping: watermarks, pass records and named locks.

A collector's rows and its watermark are written in one transaction (the caller's), so a pass
killed half-way leaves both as they were. Locks are rows with an expiry, which works the same on
SQLite and PostgreSQL: ``acquire_lock`` wins only when the row is absent, expired, or its
owner is gone. The row names its owner (host and pid) and carries a heartbeat the owner
refreshes while it runs (``heartbeat_lock``): on the same host a dead pid frees the lock at once;
another host's lock is taken over once its heartbeat is older than ``STALE_AFTER``. On
PostgreSQL the caller also holds a session advisory lock (``session_lock``), which the server
drops with its owner's session: holding it proves any other row's owner is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.schema import collector_runs, locks, watermarks
from store.writes import inserted_id, upsert

__all__ = [
    "HEARTBEAT_EVERY",
    "STALE_AFTER",
    "Holder",
    "acquire_lock",
    "heartbeat_lock",
    "holder",
    "session_lock",
    "slot_pass",
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
    slot: datetime | None = None,
) -> int:
    """Record that a pass began (committed at once, so a crashed pass stays visible); ``slot``
    is the scheduler's cron firing it fills."""
    with engine.begin() as conn:
        result = conn.execute(
            collector_runs.insert().values(
                source=source,
                started_at=now,
                status="running",
                window_start=window_start,
                window_end=window_end,
                slot=slot,
            )
        )
        return inserted_id(result)


def slot_pass(engine: Engine, source: str, slot: datetime) -> dict[str, Any] | None:
    """A succeeded pass of ``source`` that filled the schedule ``slot`` (another scheduler's), or None."""
    c = collector_runs.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(c.collector_run_id, c.started_at, c.ended_at)
            .where(c.source == source, c.slot == slot, c.status == "succeeded")
            .order_by(c.collector_run_id).limit(1)
        ).mappings().first()
    return dict(row) if row is not None else None


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


HEARTBEAT_EVERY = timedelta(seconds=30)  # how often a lock's owner refreshes heartbeat_at
STALE_AFTER = timedelta(seconds=120)  # another host's lock without a heartbeat for this long is taken over


def acquire_lock(engine: Engine, name: str, owner: str, *, now: datetime, ttl: timedelta,
                 stale: timedelta = STALE_AFTER, session_held: bool = False) -> bool:
    """Take the named lock for ``ttl`` unless someone else holds it and is alive.

    The owner is ``host:pid:...``. Another owner's lock is taken over when it expired, when its
    owner is a process of this host that no longer runs, when it is another host's whose
    heartbeat is older than ``stale``, or (``session_held``: the caller holds the PostgreSQL
    session lock of ``name``) always; the passes it left ``running`` are marked ``interrupted``."""
    now = now.astimezone(UTC)
    host, pid = _host_pid(owner)
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at <= now))
        row = conn.execute(sa.select(locks.c.owner, locks.c.acquired_at, locks.c.heartbeat_at)
                           .where(locks.c.name == name)).first()
        held = row.owner if row is not None else None
        if row is not None and held != owner and (session_held or _gone(row.owner, row.heartbeat_at, now, stale)):
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == row.owner))
            _mark_interrupted(conn, name, row.owner, row.acquired_at, now)
            held = None
        if held is not None and held != owner:
            return False
        if held is None:
            try:
                with conn.begin_nested():
                    conn.execute(locks.insert().values(name=name, owner=owner, acquired_at=now, expires_at=now + ttl,
                                                       host=host, pid=pid, heartbeat_at=now))
            except sa.exc.IntegrityError:
                return False
        else:
            conn.execute(locks.update().where(locks.c.name == name).values(expires_at=now + ttl, heartbeat_at=now))
    return True


def heartbeat_lock(engine: Engine, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
    """Refresh the heartbeat (and the expiry) of a lock ``owner`` holds; False when it lost it."""
    now = now.astimezone(UTC)
    with engine.begin() as conn:
        result = conn.execute(locks.update().where(locks.c.name == name, locks.c.owner == owner)
                              .values(heartbeat_at=now, expires_at=now + ttl))
        return bool(result.rowcount)


def _host_pid(owner: str) -> tuple[str, int | None]:
    parts = owner.split(":")
    return parts[0], (int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None)


def _gone(owner: str, heartbeat_at: datetime | None, now: datetime, stale: timedelta) -> bool:
    """True when the lock's owner is known to be gone: a dead pid of this host, or another
    host's owner whose heartbeat is older than ``stale``."""
    host, _ = _host_pid(owner)
    if host == socket.gethostname():
        return owner_is_dead(owner)
    return heartbeat_at is not None and now - heartbeat_at > stale


@contextmanager
def session_lock(engine: Engine, name: str) -> Iterator[bool | None]:
    """PostgreSQL: hold the session advisory lock of ``name`` on a connection of its own for the
    block; yields True (held), False (another session holds it). The server releases it when the
    session ends, also when its process is killed. SQLite: yields None (the lock rows alone)."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
    except Exception:
        conn.invalidate()
        conn.close()
        raise
    try:
        yield got
    finally:
        try:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        except Exception:  # noqa: BLE001 - the session is gone, and its lock with it
            conn.invalidate()
        finally:
            conn.close()


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (``host:pid:...``) names a process of this host that no longer runs."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another host (or a foreign owner): its heartbeat or expiry frees it
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


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, for messages."""

    owner: str
    since: datetime
    heartbeat_at: datetime | None
    alive: bool  # False: its pid is dead, or its heartbeat stopped (missed two beats)

    def describe(self, now: datetime | None = None) -> str:
        text = f"{describe_owner(self.owner)} since {self.since:%Y-%m-%d %H:%M:%S} UTC"
        if self.heartbeat_at is not None and now is not None:
            text += f", last heartbeat {max(0, int((now - self.heartbeat_at).total_seconds()))} s ago"
        if not self.alive:
            text += "; that owner looks dead (no heartbeat): its lock is taken over once stale or expired"
        return text


def holder(engine: Engine, name: str, *, now: datetime) -> Holder | None:
    """Who holds the named lock, and whether it looks alive; None when free."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(locks.c.owner, locks.c.acquired_at, locks.c.heartbeat_at)
                           .where(locks.c.name == name)).first()
    if row is None:
        return None
    now = now.astimezone(UTC)
    host, _ = _host_pid(row.owner)
    if host == socket.gethostname():
        alive = not owner_is_dead(row.owner)
    else:
        alive = row.heartbeat_at is None or now - row.heartbeat_at <= 2 * HEARTBEAT_EVERY + timedelta(seconds=5)
    return Holder(row.owner, row.acquired_at, row.heartbeat_at, alive)


def lock_holder(engine: Engine, name: str) -> str | None:
    """Who holds the named lock, for messages: ``pid N on host H since T UTC``; None if free."""
    h = holder(engine, name, now=datetime.now(UTC))
    return None if h is None else h.describe()


def release_lock(engine: Engine, name: str, owner: str) -> None:
    """Give up the named lock if ``owner`` holds it."""
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))
