"""The logs collector on the real aws-shapes examples, through the local AWS over HTTP: Lambda
REPORT lines become ``lambda_invocations`` rows, Glue's error and output streams become the run's
log lines, and text lines keep their own level."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW
from sfn_records import execution_log

from collectors.base import RunRow
from collectors.runner import collect
from pipepulse.vocab import FAILED
from store.schema import lambda_invocations, run_logs, runs
from store.writes import upsert

pytestmark = pytest.mark.aws_clock
SHAPES = Path("/work/shared/data/aws-shapes")
if not SHAPES.is_dir():
    SHAPES = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes"
T0 = AWS_NOW - timedelta(hours=30)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)


def _samples() -> list[dict]:
    return json.loads((SHAPES / "lambda-logs" / "expected.json").read_text())["samples"]


def _text(folder: str, sample: dict) -> str:
    lines = (SHAPES / folder / sample["file"]).read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines[sample["first_line"] - 1:sample["last_line"]])


def test_every_report_sample_becomes_one_invocation_row(aws, make_settings, engine, now):
    # each sample is one CloudWatch event (a REPORT with its X-Ray line is one event, as Lambda writes it)
    samples = _samples()
    reports = [s for s in samples if s["expected"].get("kind") in ("REPORT", "platform.report")]
    assert len(reports) >= 10
    logs = boto3.client("logs")
    group = "/aws/lambda/shapes"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = [{"timestamp": _ms(i / 10), "message": _text("lambda-logs", s)} for i, s in enumerate(samples)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    settings = make_settings('[collectors]\nsources = ["logs"]\n[collectors.logs.lambda_functions]\nshapes = "orders"\n')

    [first] = collect(settings, engine, now=now)
    assert first.status == "succeeded", first.error
    assert first.calls == {"logs:FilterLogEvents": 1}
    with engine.connect() as conn:
        got = {(r.request_id, r.duration_ms, r.billed_duration_ms, r.memory_size_mb, r.max_memory_used_mb,
                r.init_duration_ms, r.pipeline, r.function_name)
               for r in conn.execute(sa.select(lambda_invocations))}
    want = {(e["request_id"], e["duration_ms"], e["billed_duration_ms"], e["memory_size_mb"], e["max_memory_used_mb"],
             e.get("init_duration_ms"), "orders", "shapes") for e in (s["expected"] for s in reports)}
    # every REPORT sample's figures, exactly (two samples of one request id carry the same figures)
    assert got == want

    # the next pass reads from the last REPORT (minus 5 minutes) and writes nothing twice
    [second] = collect(settings, engine, now=now + timedelta(minutes=10))
    assert second.status == "succeeded" and second.rows_written == 0


def test_glue_error_and_output_streams_are_tied_to_the_run(aws, make_settings, engine, now):
    job_run = "jr_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    run = RunRow(run_id=f"glue:nightly:{job_run}", pipeline="glue_nightly", source="glue", status=FAILED,
                 started_at=T0, ended_at=T0 + timedelta(minutes=30), correlation_id=job_run,
                 error_type="FAILED", error_message="Command Failed with Exit Code 1")
    with engine.begin() as conn:
        upsert(conn, runs, [run.as_row()], now=now)
    lines = (SHAPES / "glue" / "glue-job-logs.log").read_text().splitlines()
    logs = boto3.client("logs")
    for group in ("/aws-glue/jobs/error", "/aws-glue/jobs/output"):
        logs.create_log_group(logGroupName=group)
    for stream in (job_run, "jr_other"):
        logs.create_log_stream(logGroupName="/aws-glue/jobs/error", logStreamName=stream)
    logs.put_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=job_run,
                        logEvents=[{"timestamp": _ms(1 + i), "message": line} for i, line in enumerate(lines)])
    logs.put_log_events(logGroupName="/aws-glue/jobs/error", logStreamName="jr_other",
                        logEvents=[{"timestamp": _ms(2), "message": "18/06/13 16:54:29 ERROR Other: not this run"}])
    logs.create_log_stream(logGroupName="/aws-glue/jobs/output", logStreamName=job_run)
    logs.put_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=job_run, logEvents=[
        {"timestamp": _ms(20), "message": "18/06/13 16:56:00 INFO GlueContext: 0 errors in 12 partitions"},
        {"timestamp": _ms(21), "message": "18/06/13 16:56:01 WARN GlueContext: slow partition"},
    ])
    settings = make_settings('[collectors]\nsources = ["logs"]\n')

    [p] = collect(settings, engine, now=now)
    assert p.status == "succeeded", p.error
    assert p.calls == {"logs:DescribeLogGroups": 2, "logs:FilterLogEvents": 2}
    with engine.connect() as conn:
        got = conn.execute(sa.select(run_logs.c.run_id, run_logs.c.level, run_logs.c.stage, run_logs.c.log_group,
                                     run_logs.c.message).order_by(run_logs.c.ts)).all()
    assert {r.run_id for r in got} == {run.run_id}
    error = [(r.level, r.stage) for r in got if r.log_group == "/aws-glue/jobs/error"]
    # the JVM's hook lines have no level (stderr); log4j lines keep their own WARN / ERROR
    assert error == [("STDERR", None)] * 3 + [("WARN", "YarnAllocator"), ("WARN", "YarnSchedulerBackend$YarnSchedulerEndpoint"),
                                             ("ERROR", "YarnClusterScheduler"), ("WARN", "TaskSetManager")] * 2
    assert got[0].message == "# java.lang.OutOfMemoryError: Java heap space"
    # output: "0 errors" is an INFO line and stays out; the WARN comes in
    assert [(r.level, r.message) for r in got if r.log_group == "/aws-glue/jobs/output"] == [("WARN", "slow partition")]


def test_text_lines_of_a_failed_run_keep_their_own_level(aws, make_settings, engine, ledger, now):
    ledger.run(run_id="r7", pipeline="orders", status="FAILED", trigger="schedule", attempt=1, started_at=T0.isoformat(),
               ended_at=(T0 + timedelta(minutes=10)).isoformat(), correlation_id="c-r7")
    logs = boto3.client("logs")
    group = "/pipepulse/reference/orders"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": _ms(1), "message": f"[INFO]\t{T0:%Y-%m-%dT%H:%M:%S}.000Z\treq-1\tc-r7 loaded: 0 errors"},
        {"timestamp": _ms(2), "message": f"[ERROR]\t{T0:%Y-%m-%dT%H:%M:%S}.000Z\treq-1\tc-r7 load failed"},
        {"timestamp": _ms(3), "message": "c-r7 finished with 0 errors"},
    ])
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n')
    passes = {p.source: p for p in collect(settings, engine, now=now)}
    assert passes["logs"].status == "succeeded", passes["logs"].error
    with engine.connect() as conn:
        got = conn.execute(sa.select(run_logs.c.level, run_logs.c.message)).all()
    # the [ERROR] line without its prefix; "0 errors" is not an error, in a tagged line or a bare one
    assert [tuple(r) for r in got] == [("ERROR", "c-r7 load failed")]


SFN_ROLE = "arn:aws:iam::123456789012:role/sfn"
SFN_GROUP = "/aws/vendedlogs/states/recorded"


@pytest.mark.parametrize("path", sorted((SHAPES / "sfn-history").glob("*.history.json")), ids=lambda p: p.name)
def test_step_functions_execution_log_records_of_a_failed_run(path, aws, make_settings, engine, now):
    summary = {s["file"]: s for s in json.loads((SHAPES / "sfn-history" / "SOURCES.json").read_text())}[path.name]
    summary = summary["summary_derived_by_us"]
    events = json.loads(path.read_text())["events"]
    sfn = boto3.client("stepfunctions")
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=SFN_GROUP)
    logs.create_log_stream(logGroupName=SFN_GROUP, logStreamName="states/recorded/1")
    machine = sfn.create_state_machine(
        name="recorded", roleArn=SFN_ROLE,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        loggingConfiguration={"level": "ALL", "includeExecutionData": True, "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:us-east-1:123456789012:log-group:{SFN_GROUP}:*"}}]},
    )["stateMachineArn"]
    mine = machine.replace(":stateMachine:", ":execution:") + ":run-1"
    other = machine.replace(":stateMachine:", ":execution:") + ":run-2"
    records = execution_log(mine, events, _epoch_ms(T0)) + execution_log(other, events[-2:], _epoch_ms(T0 + timedelta(seconds=len(events))))
    logs.put_log_events(logGroupName=SFN_GROUP, logStreamName="states/recorded/1",
                        logEvents=[{"timestamp": int(r["event_timestamp"]), "message": json.dumps(r)} for r in records])
    # the run as the stepfunctions collector stores it (failed, so its logs are read)
    run = RunRow(run_id=f"stepfunctions:{mine}", pipeline="recorded", source="stepfunctions", status=FAILED,
                 started_at=T0, ended_at=T0 + timedelta(seconds=len(events)), correlation_id="run-1")
    with engine.begin() as conn:
        upsert(conn, runs, [run.as_row()], now=now)
    settings = make_settings('[collectors]\nsources = ["logs"]\n')

    [p] = collect(settings, engine, now=now)
    assert p.status == "succeeded", p.error
    # one DescribeStateMachine for the log group, one DescribeLogGroups for its retention
    assert p.calls == {"states:DescribeStateMachine": 1, "logs:DescribeLogGroups": 1, "logs:FilterLogEvents": 1}
    with engine.connect() as conn:
        got = conn.execute(sa.select(run_logs).order_by(run_logs.c.ts)).all()
    failures = {k: n for k, n in summary["event_type_counts"].items() if k.endswith(("Failed", "TimedOut", "Aborted"))}
    # every failure record of this execution (and none of the other one), ERROR by its type; nothing else
    assert len(got) == sum(failures.values())
    assert {r.run_id for r in got} <= {run.run_id}
    assert all(r.level == "ERROR" and r.log_group == SFN_GROUP for r in got)
    assert sorted(r.message.split(":", 1)[0] for r in got) == sorted(k for k, n in failures.items() for _ in range(n))
    for r, ev in zip(got, [e for e in events if e["type"] in failures], strict=True):
        error = next((v for k, v in ev.items() if k.endswith("EventDetails")), {}).get("error")
        if error:
            assert error in r.message
