"""A cut-off or malformed 200 answer fails the pass (watermark unchanged); the next clean pass stores everything."""

from __future__ import annotations

import json
from datetime import date, timedelta

import boto3
import botocore.session
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW

from collectors.aws import check_answer
from collectors.runner import collect
from devkit.localaws.costexplorer import CostExplorerStandIn
from devkit.localaws.faults import FaultInjector, FaultRule
from pipepulse import retries
from store.schema import cost_daily, metric_points, run_logs, runs, watermarks

TODAY = date(2026, 11, 20)  # the `now` fixture's day
_SFN = botocore.session.get_session().get_service_model("stepfunctions")
_PAGER = {"input_token": "nextToken", "output_token": "nextToken", "result_key": "executions"}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(retries, "AWS_REQUESTS", retries.Backoff(base=0.0, cap=0.0))


def test_check_answer_names_each_problem():
    op = _SFN.operation_model("ListExecutions")
    assert check_answer({"executions": [], "ResponseMetadata": {}}, op, _PAGER) == []
    assert check_answer({"ResponseMetadata": {}}, op, _PAGER) == [
        "the answer holds none of its members (an empty or unreadable body)",
        "required member(s) missing: executions",
        "the paged list 'executions' is missing",
    ]
    assert check_answer({"executions": "x", "nextToken": ""}, op, _PAGER) == [
        "page token 'nextToken' is '', not a non-empty string",
        "executions is a str, expected list",
    ]
    assert check_answer(None, op, _PAGER) == ["the answer is a NoneType, not an object"]


def test_body_fault_rule_is_checked():
    with pytest.raises(ValueError, match="body"):
        FaultRule(body="garbled", code=None)


def _items(start: date, days: int) -> list[dict]:
    out = []
    for d in range(days):
        day = start + timedelta(days=d)
        for i, svc in enumerate(["Amazon S3", "AWS Glue", "AWS Lambda"]):
            out.append({"date": day.isoformat(), "service": svc, "region": "us-east-1", "usage_type": f"u{i}",
                        "tags": {"pipeline": "orders"}, "unblended_cost": round(1.0 + i + d * 0.01, 2),
                        "amortized_cost": 1.0, "usage_quantity": 1.0})
    return out


@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_cost_explorer_bad_page_two(aws, make_settings, engine, now, body):
    ce = aws.app(CostExplorerStandIn)
    ce.configure(today=TODAY, page_size=7)
    ce.load_line_items(_items(TODAY - timedelta(days=40), 41))
    faults = aws.app(FaultInjector)
    faults.reset()
    rule = faults.add(service="ce", operation="GetCostAndUsage", code=None, body=body, after=1, times=-1)
    settings = make_settings('[collectors]\nsources = ["ce"]\n[collectors.ce]\nbackfill_days = 10\nforecast = false\n')
    [failed] = collect(settings, engine, now=now)
    assert failed.status == "failed"
    assert "invalid answer to ce:GetCostAndUsage" in failed.error
    assert f"gave up after {retries.AWS_REQUEST_ATTEMPTS} attempts" in failed.error
    assert rule.hits == retries.AWS_REQUEST_ATTEMPTS
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(watermarks)).scalar_one() == 0
    faults.reset()
    [clean] = collect(settings, engine, now=now + timedelta(hours=1))
    assert clean.status == "succeeded", clean.error
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one()
    assert stored > 0 and clean.rows_written == stored


@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_glue_bad_job_runs_page(aws, make_settings, engine, now, body):
    glue = boto3.client("glue")
    glue.create_job(Name="nightly", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"},
                    ExecutionProperty={"MaxConcurrentRuns": 10})
    ids = {glue.start_job_run(JobName="nightly")["JobRunId"] for _ in range(4)}
    faults = aws.app(FaultInjector)
    faults.reset()
    faults.add(service="glue", operation="GetJobRuns", code=None, body=body, times=-1)
    settings = make_settings('[collectors]\nsources = ["glue"]\n')
    [failed] = collect(settings, engine, now=now)
    assert failed.status == "failed"
    assert "invalid answer to page 1 of glue:GetJobRuns" in failed.error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(watermarks)).scalar_one() == 0
    faults.reset()
    [clean] = collect(settings, engine, now=now + timedelta(minutes=5))
    assert clean.status == "succeeded", clean.error
    with engine.connect() as conn:
        stored = conn.execute(sa.select(runs.c.run_id)).scalars().all()
    assert sorted(stored) == sorted(f"glue:nightly:{i}" for i in ids)  # expected = stored, 0 doubled, 0 lost


@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_stepfunctions_bad_executions_page(aws, make_settings, engine, now, body):
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="etl", roleArn="arn:aws:iam::123456789012:role/sfn", definition=json.dumps(
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    arns = {sfn.start_execution(stateMachineArn=arn, name=f"e{i}")["executionArn"] for i in range(3)}
    faults = aws.app(FaultInjector)
    faults.reset()
    faults.add(service="stepfunctions", operation="ListExecutions", code=None, body=body, times=-1)
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n')
    [failed] = collect(settings, engine, now=now)
    assert failed.status == "failed"
    assert "invalid answer to page 1 of states:ListExecutions" in failed.error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(watermarks)).scalar_one() == 0
    faults.reset()
    [clean] = collect(settings, engine, now=now + timedelta(minutes=5))
    assert clean.status == "succeeded", clean.error
    with engine.connect() as conn:
        stored = conn.execute(sa.select(runs.c.run_id)).scalars().all()
    assert sorted(stored) == sorted(f"stepfunctions:{a}" for a in arns)  # expected = stored, 0 doubled, 0 lost


@pytest.mark.aws_clock
@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_cloudwatch_bad_metric_data(aws, make_settings, engine, now, body):
    cw = boto3.client("cloudwatch")
    t = now - timedelta(minutes=50)
    cw.put_metric_data(Namespace="Pipepulse/Reference", MetricData=[
        {"MetricName": "RecordsIn", "Dimensions": [{"Name": "Pipeline", "Value": f"p{i}"}], "Timestamp": t, "Value": float(i)}
        for i in range(3)])
    faults = aws.app(FaultInjector)
    faults.reset()
    faults.add(service="cloudwatch", operation="GetMetricData", code=None, body=body, times=-1)
    settings = make_settings('[collectors]\nsources = ["cloudwatch"]\n[collectors.cloudwatch]\nnamespaces = ["Pipepulse/Reference"]\n'
                             'stats = ["Sum"]\nperiod_seconds = 300\nlookback_hours = 1\n')
    [failed] = collect(settings, engine, now=now)
    assert failed.status == "failed"
    assert "monitoring:GetMetricData" in failed.error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(watermarks)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_points)).scalar_one() == 0
    faults.reset()
    [clean] = collect(settings, engine, now=now + timedelta(minutes=1))
    assert clean.status == "succeeded", clean.error
    with engine.connect() as conn:
        values = conn.execute(sa.select(metric_points.c.value)).scalars().all()
    assert sorted(values) == [0.0, 1.0, 2.0]  # expected = stored, 0 doubled, 0 lost


@pytest.mark.aws_clock
@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_logs_bad_filter_page(aws, make_settings, engine, ledger, now, body):
    t0 = AWS_NOW - timedelta(hours=35)
    ledger.run(run_id="r2", pipeline="orders", status="FAILED", trigger="schedule", attempt=1, started_at=t0.isoformat(),
               ended_at=(t0 + timedelta(minutes=10)).isoformat(), correlation_id="c-r2", error_type="ValueError",
               error_message="bad row")
    logs = boto3.client("logs")
    group, stream = "/pipepulse/reference/orders", f"{t0:%Y/%m/%d}/r2"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": int((t0 + timedelta(minutes=m)).timestamp() * 1000),
         "message": json.dumps({"correlation_id": "c-r2", "run_id": "r2", "stage": "load", "level": "ERROR", "message": f"e{m}"})}
        for m in (1, 2, 3)])
    faults = aws.app(FaultInjector)
    faults.reset()
    faults.add(service="logs", operation="FilterLogEvents", code=None, body=body, times=-1)
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n')
    first = {p.source: p for p in collect(settings, engine, now=now)}
    assert first["logs"].status == "failed"
    assert "logs:FilterLogEvents" in (first["logs"].error or "")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(run_logs)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(watermarks).where(watermarks.c.source == "logs")).scalar_one() == 0
    faults.reset()
    again = {p.source: p for p in collect(settings, engine, now=now + timedelta(minutes=5))}
    assert again["logs"].status == "succeeded", again["logs"].error
    with engine.connect() as conn:
        messages = conn.execute(sa.select(run_logs.c.message)).scalars().all()
    assert sorted(messages) == ["e1", "e2", "e3"]  # expected = stored, 0 doubled, 0 lost
