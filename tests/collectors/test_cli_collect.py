from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import sqlalchemy as sa

from cli.main import main
from devkit.localaws.faults import FaultInjector
from store.db import connect
from store.schema import runs


def test_collect_exit_status_when_one_source_fails(aws, db_url, tmp_path, monkeypatch, capsys, ledger):
    t0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)
    ledger.run(run_id="r1", pipeline="orders", status="SUCCEEDED", trigger="schedule", attempt=1,
               started_at=t0.isoformat(), ended_at=(t0 + timedelta(minutes=5)).isoformat())
    boto3.client("glue").create_job(Name="j", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/j.py"})
    config = tmp_path / "pipepulse.toml"
    config.write_text('[collectors]\nsources = ["reference", "glue"]\n')
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIPEPULSE_LOG_LEVEL", "ERROR")
    aws.app(FaultInjector).add(service="glue", operation="GetJobs", code="AccessDeniedException", times=-1)

    assert main(["--config", str(config), "collect"]) == 1
    out = capsys.readouterr().out
    assert "reference      succeeded  rows        1  API calls     0  $0.0000" in out
    assert "glue           failed     rows        0  API calls     1  $0.0000" in out
    assert "grant glue:GetJobs" in out
    engine = connect(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.run_id)).scalars().all() == ["reference:r1"]  # the other source ran
    engine.dispose()

    aws.app(FaultInjector).reset()
    assert main(["--config", str(config), "collect", "--source", "glue"]) == 0
    assert "glue           succeeded" in capsys.readouterr().out
