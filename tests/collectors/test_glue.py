from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
import sqlalchemy as sa
from moto.glue.models import glue_backends
from moto.moto_api import state_manager

from collectors.runner import collect
from store.schema import run_daily, runs

CONFIG = """
[collectors]
sources = ["glue"]
[[pipelines]]
name = "glue_nightly"
source = "glue"
resource = "nightly-compaction"
"""


@pytest.fixture
def manual_glue_runs():
    """Glue runs keep the state set on the backend (moto would move RUNNING on to SUCCEEDED)."""
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition("glue::job_run")


def test_job_runs_with_failure_and_dpu_cost(aws, manual_glue_runs, make_settings, engine, now):
    glue = boto3.client("glue")
    glue.create_job(Name="nightly-compaction", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"},
                    WorkerType="G.2X", NumberOfWorkers=10, GlueVersion="4.0", ExecutionProperty={"MaxConcurrentRuns": 5})
    ids = [glue.start_job_run(JobName="nightly-compaction")["JobRunId"] for _ in range(3)]
    job = glue_backends["123456789012"]["us-east-1"].jobs["nightly-compaction"]
    by_id = {r.job_run_id: r for r in job.job_runs}
    for i, rid in enumerate(ids):  # known start times; run 1 failed, run 2 still running
        by_id[rid].started_on = by_id[rid].modified_on = datetime(2026, 11, 19, 2, i, tzinfo=UTC)
        by_id[rid].completed_on = datetime(2026, 11, 19, 2, i + 3, tzinfo=UTC)
    by_id[ids[0]].status = "SUCCEEDED"
    by_id[ids[1]].status = "FAILED"
    by_id[ids[2]].status = "RUNNING"
    settings = make_settings(CONFIG)

    [first] = collect(settings, engine, now=now)
    assert first.status == "succeeded", first.error
    cost = 10 * 2.0 * 123 / 3600 * settings.prices.glue_dpu_hour  # G.2X = 2 DPU x ExecutionTime (moto: 123 s); duration is wall clock
    with engine.connect() as conn:
        got = conn.execute(sa.select(runs.c.run_id, runs.c.pipeline, runs.c.status, runs.c.duration_seconds,
                                     runs.c.cost_usd, runs.c.error_type).order_by(runs.c.started_at)).all()
        assert got == [
            (f"glue:nightly-compaction:{ids[0]}", "glue_nightly", "SUCCEEDED", 180.0, cost, None),
            (f"glue:nightly-compaction:{ids[1]}", "glue_nightly", "FAILED", 180.0, cost, "FAILED"),
            (f"glue:nightly-compaction:{ids[2]}", "glue_nightly", "RUNNING", None, None, None),
        ]
        day = conn.execute(sa.select(run_daily.c.runs, run_daily.c.succeeded, run_daily.c.failed,
                                     run_daily.c.cost_usd, run_daily.c.failed_cost_usd)).one()
        assert day == (3, 1, 1, 2 * cost, cost)

    [second] = collect(settings, engine, now=now)
    assert second.rows_written == 0
    by_id[ids[2]].status = "SUCCEEDED"
    [third] = collect(settings, engine, now=now)
    assert third.rows_written == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.status, runs.c.cost_usd).where(runs.c.run_id.like(f"%{ids[2]}"))).one() == ("SUCCEEDED", cost)
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 3
