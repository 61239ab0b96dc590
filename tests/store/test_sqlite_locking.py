"""SQLite in WAL: reads never take the write lock (a read held open blocks neither another read
nor a write); a write that waits out the busy timeout fails with an error that names the passes
holding job locks and what to do."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipepulse.errors import StoreError
from store.db import connect
from store.schema import locks, watermarks
from store.state import acquire_lock, set_watermark

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_url(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's locking")
    return db_url


def test_a_read_held_open_blocks_neither_a_read_nor_a_write(sqlite_url):
    first, second = connect(sqlite_url), connect(sqlite_url, busy_timeout=0.5)
    try:
        with first.connect() as held:
            held.execute(sa.select(locks)).all()  # a read transaction, left open
            assert held.in_transaction()
            t0 = time.monotonic()
            with second.connect() as other:
                assert other.execute(sa.select(sa.func.count()).select_from(locks)).scalar_one() == 0
            with second.begin() as writer:  # and a write goes through too (WAL)
                set_watermark(writer, "glue", "v1", now=NOW)
            assert time.monotonic() - t0 < 0.5  # nobody waited for a lock
            # the held read still sees its snapshot; a new read sees the write
            assert held.execute(sa.select(watermarks.c.value)).all() == []
        with first.connect() as fresh:
            assert fresh.execute(sa.select(watermarks.c.value)).scalars().all() == ["v1"]
    finally:
        first.dispose()
        second.dispose()


def test_a_write_blocked_past_the_timeout_names_who_holds_the_lock(sqlite_url):
    first, second = connect(sqlite_url), connect(sqlite_url, busy_timeout=0.3)
    try:
        assert acquire_lock(first, "job:glue", "buildhost:4242:abcd", now=NOW, ttl=timedelta(hours=1))
        with first.begin() as writer:  # a long write of that pass, in progress
            set_watermark(writer, "glue", "v1", now=NOW)
            t0 = time.monotonic()
            with pytest.raises(StoreError) as err:
                with second.begin() as blocked:
                    set_watermark(blocked, "ce", "v2", now=NOW)
            waited = time.monotonic() - t0
        assert 0.25 <= waited < 5
        message = str(err.value)
        assert "stayed locked for 0.3 s" in message
        assert "job:glue held by pid 4242 on host buildhost since 2026-11-20 12:00:00 UTC" in message
        assert "Wait for it to end and try again" in message
        with second.connect() as conn:  # nothing of the blocked write was stored
            assert conn.execute(sa.select(watermarks.c.source)).scalars().all() == ["glue"]
    finally:
        first.dispose()
        second.dispose()
