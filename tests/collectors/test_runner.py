"""Faults, retries and atomicity of a collection pass."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import sqlalchemy as sa

import collectors.aws as aws
import collectors.runner
from collectors.base import Collector
from collectors.runner import collect
from devkit.localaws.faults import FaultInjector
from pipepulse import retries
from pipepulse.errors import ConfigError
from store.schema import collector_runs, run_steps, runs, watermarks

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)
GLUE = """
[collectors]
sources = ["reference", "glue"]
"""


def _ledger(ledger, n=3):
    for i in range(n):
        start = T0 + timedelta(hours=i)
        ledger.run(run_id=f"r{i}", pipeline="orders", status="SUCCEEDED", trigger="schedule", attempt=1,
                   started_at=start.isoformat(), ended_at=(start + timedelta(minutes=5)).isoformat())
        ledger.step(run_id=f"r{i}", stage="extract", attempt=1, status="SUCCEEDED", started_at=start.isoformat(),
                    ended_at=(start + timedelta(minutes=2)).isoformat())


def _glue_runs(n=2):
    glue = boto3.client("glue")
    glue.create_job(Name="compaction", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/j.py"},
                    MaxCapacity=2.0, ExecutionProperty={"MaxConcurrentRuns": 10})
    return [glue.start_job_run(JobName="compaction")["JobRunId"] for _ in range(n)]


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_throttled_twice_then_retried(aws, make_settings, engine, now):
    faults = aws.app(FaultInjector)
    ids = _glue_runs(2)
    rule = faults.add(service="glue", operation="GetJobRuns", code="ThrottlingException", status=400, times=2)
    [result] = collect(make_settings('[collectors]\nsources = ["glue"]\n'), engine, now=now)
    assert result.status == "succeeded", result.error
    assert rule.hits == 2
    assert result.retries == {"glue:GetJobRuns": 2}
    assert result.calls["glue:GetJobRuns"] == 3  # every attempt is a request AWS counts
    assert _count(engine, runs) == len(ids)
    with engine.connect() as conn:
        details = json.loads(conn.execute(sa.select(collector_runs.c.details)).scalar_one())
        assert details["retries"] == {"glue:GetJobRuns": 2}
        assert conn.execute(sa.select(collector_runs.c.api_calls)).scalar_one() == result.api_calls == 4  # GetJobs + 3 GetJobRuns


def test_source_that_keeps_failing_then_resumes(aws, make_settings, engine, ledger, now):
    faults = aws.app(FaultInjector)
    _ledger(ledger)
    ids = _glue_runs(2)
    settings = make_settings(GLUE)
    rule = faults.add(service="glue", operation="GetJobRuns", code="InternalFailure", status=500, times=-1)

    first = {p.source: p for p in collect(settings, engine, now=now)}
    assert first["reference"].status == "succeeded"  # the other source still ran
    assert first["glue"].status == "failed"
    assert "InternalFailure" in first["glue"].error and f"after {retries.AWS_REQUEST_ATTEMPTS} attempts" in first["glue"].error
    assert rule.hits == retries.AWS_REQUEST_ATTEMPTS
    with engine.connect() as conn:
        assert conn.execute(sa.select(collector_runs.c.source, collector_runs.c.status, collector_runs.c.api_calls)
                            .order_by(collector_runs.c.collector_run_id)).all() == [
            ("reference", "succeeded", 0), ("glue", "failed", 1 + retries.AWS_REQUEST_ATTEMPTS)]
        assert conn.execute(sa.select(watermarks.c.source)).scalars().all() == ["reference"]
        assert conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.source == "glue")).scalar_one() == 0

    faults.reset()
    second = {p.source: p for p in collect(settings, engine, now=now + timedelta(minutes=5))}
    assert (second["glue"].status, second["glue"].rows_written) == ("succeeded", len(ids))
    assert second["reference"].rows_written == 0
    third = {p.source: p for p in collect(settings, engine, now=now + timedelta(minutes=10))}
    assert third["glue"].rows_written == 0
    assert _count(engine, runs) == 3 + len(ids)  # nothing doubled


def test_failure_inside_the_transaction_is_recorded(make_settings, engine, ledger, now, monkeypatch):
    _ledger(ledger)
    settings = make_settings('[collectors]\nsources = ["reference"]\n')
    monkeypatch.setattr(collectors.runner, "refresh_run_daily", lambda conn, **kw: 1 / 0)
    [result] = collect(settings, engine, now=now)
    assert result.status == "failed" and "ZeroDivisionError" in result.error
    assert (_count(engine, runs), _count(engine, watermarks)) == (0, 0)


def test_access_denied_names_the_iam_action(aws, make_settings, engine, now):
    aws.app(FaultInjector).add(service="states", operation="ListStateMachines", code="AccessDeniedException", status=400, times=-1)
    [result] = collect(make_settings('[collectors]\nsources = ["stepfunctions"]\n'), engine, now=now)
    assert result.status == "failed"
    assert "grant states:ListStateMachines" in result.error
    assert result.api_calls == 1  # not retried


def test_missing_credentials_is_a_clear_error(aws, make_settings, engine, now, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    [result] = collect(make_settings('[collectors]\nsources = ["glue"]\n'), engine, now=now)
    assert result.status == "failed"
    assert "no AWS credentials" in result.error and "AWS_ACCESS_KEY_ID" in result.error


def test_unknown_region_is_a_clear_error(make_settings, engine, now, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = make_settings('[aws]\nregion = "moon-central-1"\nlocal = false\n[collectors]\nsources = ["glue"]\n')
    [result] = collect(settings, engine, now=now)
    assert result.status == "failed" and "unknown AWS region 'moon-central-1'" in result.error


def test_bad_config_names_file_and_key(make_settings, engine, now):
    with pytest.raises(ConfigError, match=r"pipepulse.toml: \[collectors.glue\] cron: .*not a 5-field cron"):
        collect(make_settings('[collectors.glue]\ncron = "every minute"\n'), engine, now=now)
    with pytest.raises(ConfigError, match=r"pipepulse.toml:1: \[collectors.glu\]: unknown table; did you mean \[collectors.glue\]\?"):
        collect(make_settings('[collectors.glu]\nenabled = true\n'), engine, now=now)
    with pytest.raises(ConfigError, match="unknown collector source 'nope'"):
        collect(make_settings(""), engine, sources=["nope"], now=now)


def test_unexpected_answer_shape_is_a_clear_failure(make_settings, engine, now, monkeypatch):
    import collectors.runner as runner

    class Odd(Collector):
        name = "reference"

        def collect(self, ctx):
            answer = {"executions": [{"name": "x"}]}  # no startDate
            return answer["executions"][0]["startDate"]

    monkeypatch.setitem(runner.SOURCES, "reference", lambda settings: Odd())
    [result] = collect(make_settings('[collectors]\nsources = ["reference"]\n'), engine, now=now)
    assert result.status == "failed"
    assert result.error == "reference: unexpected shape of an answer: KeyError: 'startDate'; please report it with the collector_runs details"


def test_backoff_is_exponential_capped_and_jittered(monkeypatch):
    from botocore.exceptions import ClientError

    from pipepulse.errors import TransientError

    waits: list[float] = []
    monkeypatch.setattr(retries, "AWS_REQUESTS", retries.Backoff(base=1.0, cap=3.0))
    monkeypatch.setattr(aws, "_sleep", waits.append)
    monkeypatch.setattr(aws, "_jitter", lambda: 1.0)  # the top of the jitter range
    calls = aws.CallCounter()

    def throttled():
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "ListExecutions")

    with pytest.raises(TransientError, match=f"gave up after {retries.AWS_REQUEST_ATTEMPTS} attempts"):
        aws.call_with_retry(throttled, source="stepfunctions", service="states", operation="ListExecutions", calls=calls)
    assert waits == [1.0, 2.0, 3.0, 3.0]
    assert calls.retries == {"states:ListExecutions": 4}
    monkeypatch.setattr(aws, "_jitter", lambda: 0.0)  # the bottom: half the step
    waits.clear()
    with pytest.raises(TransientError):
        aws.call_with_retry(throttled, source="stepfunctions", service="states", operation="ListExecutions")
    assert waits == [0.5, 1.0, 1.5, 1.5]


CHILD = """
import sys, time
from datetime import datetime
from pathlib import Path
import collectors.runner
from collectors.runner import collect
from pipepulse.settings import load_settings
from store.db import connect

def hang(conn, **kw):  # rows and watermark are written, the transaction is open: get killed here
    Path(sys.argv[3]).write_text("in transaction")
    time.sleep(120)

collectors.runner.refresh_run_daily = hang
settings = load_settings({"PIPEPULSE_DATABASE_URL": sys.argv[1], "PIPEPULSE_DATA_DIR": sys.argv[2]},
                         config_path=sys.argv[4])
collect(settings, connect(sys.argv[1]), now=datetime.fromisoformat(sys.argv[5]))
"""


def test_process_killed_mid_pass_loses_and_doubles_nothing(make_settings, engine, db_url, ledger, tmp_path, now):
    import signal
    import subprocess
    import sys
    import time

    _ledger(ledger)
    settings = make_settings('[collectors]\nsources = ["reference"]\n')
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, str(tmp_path / "data"), str(marker),
                              str(tmp_path / "pipepulse.toml"), now.isoformat()])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child pass did not reach its transaction"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert (_count(engine, runs), _count(engine, run_steps), _count(engine, watermarks)) == (0, 0, 0)
    with engine.connect() as conn:  # the pass record stays, visibly unfinished
        assert conn.execute(sa.select(collector_runs.c.status)).scalar_one() == "running"
    [again] = collect(settings, engine, now=now + timedelta(minutes=5))
    assert (again.status, again.rows_written) == ("succeeded", 6)
    [third] = collect(settings, engine, now=now + timedelta(minutes=10))
    assert third.rows_written == 0
    assert (_count(engine, runs), _count(engine, run_steps)) == (3, 3)


def test_slow_answer_times_out_and_is_retried(aws, make_settings, engine, now):
    ids = _glue_runs(1)
    # 1 s read timeout against a 3 s delay: a plain answer on a loaded 2-core CI machine can pass 0.3 s
    rule = aws.app(FaultInjector).add(service="glue", operation="GetJobRuns", code=None, delay_seconds=3.0, times=1)
    settings = make_settings('[collectors]\nsources = ["glue"]\nread_timeout_seconds = 1.0\n')
    [result] = collect(settings, engine, now=now)
    assert (result.status, result.rows_written, rule.hits) == ("succeeded", len(ids), 1)
    assert result.retries == {"glue:GetJobRuns": 1}
