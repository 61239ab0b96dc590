"""The schema check at a command's start: a database that goes away between its two reads is a
one-line StoreError (what to do), never a raw driver traceback (the fault table's PostgreSQL
restart row met this)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import store.db as db
from pipepulse.errors import StoreError


def test_a_database_lost_during_the_schema_check_is_one_clear_error(tmp_path, monkeypatch):
    engine = db.connect(f"sqlite:///{tmp_path / 'x.db'}")

    def gone(_engine):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection to server at 127.0.0.1 failed: Connection refused"))

    monkeypatch.setattr(db, "schema_status", gone)
    with pytest.raises(StoreError) as caught:
        db.check_schema(engine)
    text = str(caught.value)
    assert "unreachable" in text and "Connection refused" in text and "is the server running" in text
    assert "\n" not in text
