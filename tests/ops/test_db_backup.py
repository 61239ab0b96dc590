from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipepulse.errors import InputError, StoreError
from store.backup import backup_sqlite
from store.db import check_schema, connect
from store.schema import metadata, metric_points, metric_series, run_logs, runs


def _fill(engine, now, n_points: int = 3000) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(metric_series), [{"series_id": 1, "series_key": "k", "namespace": "N",
                                                 "metric_name": "M", "stat": "Sum", "period_seconds": 60}])
        conn.execute(sa.insert(metric_points),
                     [{"series_id": 1, "ts": now - timedelta(minutes=i), "value": i * 0.5} for i in range(n_points)])
        conn.execute(sa.insert(runs), [{"run_id": f"reference:{i}", "pipeline": "orders", "source": "reference",
                                        "status": "SUCCEEDED", "started_at": now - timedelta(hours=i),
                                        "updated_at": now} for i in range(50)])
        conn.execute(sa.insert(run_logs), [{"log_id": f"g:{i}", "ts": now, "message": "é ✓ " * i} for i in range(20)])


def _dump(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(conn.execute(sa.select(t)).all(), key=repr)
            for t in metadata.sorted_tables
        }


@pytest.fixture
def sqlite_url(tmp_path, _sqlite_template):
    import shutil

    path = tmp_path / "live.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


def test_backup_of_a_live_database_restores_with_the_same_rows(sqlite_url, tmp_path, now, cli):
    engine = connect(sqlite_url)
    _fill(engine, now)
    before = _dump(engine)
    # a reader holds the database open and the WAL is not checkpointed: the backup is online
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    holder.execute("SELECT count(*) FROM runs").fetchone()
    assert (tmp_path / "live.db-wal").stat().st_size > 0

    status, out, _ = cli(sqlite_url, "db", "backup", str(tmp_path / "backup.db"))
    assert status == 0
    assert out.startswith(f"backed up {tmp_path / 'live.db'} to {tmp_path / 'backup.db'} (")

    # writes after the backup are not in it
    with engine.begin() as conn:
        conn.execute(sa.delete(runs))
    holder.close()
    engine.dispose()

    # restore: the backup file becomes the database (the documented procedure: stop, copy, start)
    restored_path = tmp_path / "restored.db"
    restored_path.write_bytes((tmp_path / "backup.db").read_bytes())
    assert not (tmp_path / "backup.db-wal").exists()
    restored = connect(f"sqlite:///{restored_path}")
    check_schema(restored)
    after = _dump(restored)
    assert after == before
    assert len(after["metric_points"]) == 3000 and len(after["runs"]) == 50
    restored.dispose()


def test_backup_refuses_to_overwrite_unless_forced(sqlite_url, tmp_path, cli):
    target = tmp_path / "b.db"
    target.write_text("keep me")
    status, _, err = cli(sqlite_url, "db", "backup", str(target))
    assert status == 1
    assert err == f"pipepulse: error: {target} already exists; choose a new path or pass --force to replace it\n"
    assert target.read_text() == "keep me"
    status, _, _ = cli(sqlite_url, "db", "backup", str(target), "--force")
    assert status == 0
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not (tmp_path / "b.db.partial").exists()


def test_backup_refuses_postgresql_and_points_at_pg_dump(tmp_path):
    with pytest.raises(StoreError, match=r"this one is postgresql \(postgresql\+psycopg://u:\*\*\*@db:5432/pp\)\. Back PostgreSQL up with pg_dump"):
        backup_sqlite("postgresql+psycopg://u:secret@db:5432/pp", tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_backup_refuses_a_missing_database_or_folder(tmp_path):
    with pytest.raises(StoreError, match="does not exist; nothing to back up"):
        backup_sqlite(f"sqlite:///{tmp_path / 'nope.db'}", tmp_path / "x.db")
    (tmp_path / "real.db").write_bytes(b"")
    with pytest.raises(InputError, match="folder .* does not exist; create it first"):
        backup_sqlite(f"sqlite:///{tmp_path / 'real.db'}", tmp_path / "missing" / "x.db")
