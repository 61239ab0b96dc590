"""The dashboard's PostgreSQL role (``pipepulse db upgrade --dashboard-role``, store/roles.py):
it reads every table and writes only an anomaly's status and the audit log, through the same
store functions the dashboard calls. Issue #19: the internet-facing dashboard connected to RDS as
the master user. PostgreSQL only (SQLite has no roles)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cli.main import main
from store import anomalies as anomalies_store
from store import audit as audit_store
from store.schema import anomalies, runs

PASSWORD = "a dashboard role pass phrase"


@pytest.fixture
def pg_url(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("roles are PostgreSQL's")
    return db_url


def test_the_dashboard_role_reads_writes_statuses_and_audit_and_nothing_else(pg_url, monkeypatch, capsys, now):
    role = f"pp_dash_{os.getpid()}"
    owner = sa.create_engine(pg_url)
    ws = now - timedelta(days=1)
    with owner.begin() as conn:
        conn.execute(anomalies.insert().values(
            fingerprint="fp-1", kind="cost", subject="daily spend", window_start=ws, window_end=now, severity="high",
            status="open", first_seen=ws, last_seen=ws))
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", pg_url)
    monkeypatch.setenv("PIPEPULSE_DASHBOARD_DB_PASSWORD", PASSWORD)
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    try:
        assert main(["db", "upgrade", "--dashboard-role", role]) == 0
        assert capsys.readouterr().out.endswith(f"dashboard role {role}: reads every table, writes anomaly statuses and the audit log\n")
        assert main(["db", "upgrade", "--dashboard-role", role]) == 0  # again: same grants, no error
        dash = sa.create_engine(sa.make_url(pg_url).set(username=role, password=PASSWORD))
        with dash.begin() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 0
            row = anomalies_store.set_status(conn, "fp-1", "acknowledged", by="ann", now=now)
            audit_id = audit_store.record(conn, at=now, action="anomaly_acknowledged", outcome="ok", actor="ann", target="fp-1")
            audit_store.finish(conn, audit_id, "ok", "checked")
            assert audit_store.login_failures(conn, actor="ann", client="local", since=now - timedelta(days=1)) == ([], [])
        assert row["status"] == "acknowledged"
        for statement in (
            runs.insert().values(run_id="x", pipeline="p", source="reference", status="FAILED", started_at=datetime.now(UTC)),
            anomalies.update().values(subject="rewritten"),
            anomalies.delete(),
            sa.text("DELETE FROM audit_log"),
            sa.text("UPDATE audit_log SET actor = 'someone else'"),
            sa.text("CREATE TABLE planted (x int)"),
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), dash.begin() as conn:
                conn.execute(statement)
        dash.dispose()
    finally:
        with owner.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'REVOKE ALL ON DATABASE "{sa.make_url(pg_url).database}" FROM "{role}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        owner.dispose()


def test_a_dashboard_role_on_sqlite_is_refused(db_url, monkeypatch, capsys):
    if not db_url.startswith("sqlite"):
        pytest.skip("the SQLite half")
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    monkeypatch.setenv("PIPEPULSE_DASHBOARD_DB_PASSWORD", PASSWORD)
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    assert main(["db", "upgrade", "--dashboard-role", "pp_dash"]) == 1
    assert "a dashboard role is a PostgreSQL role; SQLite has none" in capsys.readouterr().err
