"""The backup job: dated SQLite copies in [backup] dir, the newest [backup] keep kept; PostgreSQL skipped."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from jobs.registry import job


def test_backup_job_keeps_the_newest_copies(engine, make_settings, now, tmp_path, db_url):
    settings = make_settings(f'[backup]\ndir = "{tmp_path / "bk"}"\nkeep = 2\n')
    results = [job("backup").run(settings, engine, now=now + timedelta(hours=h)) for h in range(3)]
    if not db_url.startswith("sqlite"):
        assert {r.status for r in results} == {"skipped"}
        assert "RDS automated backups" in results[0].error
        return
    assert [r.status for r in results] == ["ran"] * 3
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == [
        "pipepulse-20261120T130000Z.db", "pipepulse-20261120T140000Z.db"]
    assert [p.name for p in results[2].removed] == ["pipepulse-20261120T120000Z.db"]
    copy = sqlite3.connect(tmp_path / "bk" / "pipepulse-20261120T140000Z.db")
    assert copy.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    copy.close()
