"""Express workflows: executions read from the state machine's execution log (CloudWatch Logs,
its ``loggingConfiguration``), priced by duration and memory as AWS bills them.

The execution log records are what Step Functions writes (``id``, ``type``, ``details``,
``previous_event_id``, ``event_timestamp`` in epoch ms, ``execution_arn``, all ids as strings);
the event sequences are the real recorded histories of ../shared/data/aws-shapes/sfn-history,
written to the log group as Step Functions would log them, and read back over HTTP.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW
from sfn_records import execution_log

from collectors.runner import collect
from collectors.stepfunctions import express_cost, express_memory_mb
from pipepulse.settings import Prices
from store.schema import collector_runs, run_steps, runs

pytestmark = pytest.mark.aws_clock
ROLE = "arn:aws:iam::123456789012:role/sfn"
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
GROUP = "/aws/vendedlogs/states/express-shapes"
HISTORIES = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes" / "sfn-history").glob("*.history.json"))
TERMINAL = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "CANCELLED"}


def test_express_price_by_hand():
    # AWS's pricing example 3: 50 KB definition, 400 Map steps of 32 KB each -> 62.85 MB, billed 64 MB
    assert express_memory_mb(50_000, 32_000, 400) == pytest.approx(62.85)
    # 1,234 ms -> 1,300 ms billed; 62.85 MB -> 64 MB = 0.0625 GB: 1.3 x 0.0625 = 0.08125 GB-s
    # 0.08125 x $0.00001667 + $0.000001 (one request) = $0.0000023544375
    assert express_cost(1234, 62.85, Prices()) == pytest.approx(0.0000023544375, rel=1e-12)
    # 65 MB is two 64 MB steps; exactly 1,000 ms stays 1,000 ms: 1.0 x 0.125 x 0.00001667 + 0.000001
    assert express_cost(1000, 65, Prices()) == pytest.approx(0.000003083750, rel=1e-12)
    # AWS's example 4 per execution: 10 s at 64 MB -> 0.625 GB-s x $0.00001667 + $0.000001 = $0.00001141875
    assert express_cost(10_000, 64, Prices()) == pytest.approx(0.00001141875, rel=1e-12)


def _machine(name, *, logging=True):
    sfn = boto3.client("stepfunctions")
    logs = boto3.client("logs")
    kwargs = {}
    if logging:
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName=f"states/{name}/2026/1")
        kwargs["loggingConfiguration"] = {
            "level": "ALL", "includeExecutionData": True,
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}:*"}}]}
    arn = sfn.create_state_machine(name=name, definition=DEFINITION, roleArn=ROLE, type="EXPRESS", **kwargs)["stateMachineArn"]
    return sfn, logs, arn


def _put(logs, name, records):
    logs.put_log_events(logGroupName=GROUP, logStreamName=f"states/{name}/2026/1",
                        logEvents=[{"timestamp": int(r["event_timestamp"]), "message": json.dumps(r)} for r in records])


def _details(engine):
    with engine.connect() as conn:
        rows = conn.execute(sa.select(collector_runs.c.details).order_by(collector_runs.c.collector_run_id)).scalars()
        return [json.loads(r) for r in rows]


def _ms(moment):
    return int(moment.timestamp() * 1000)


def test_hand_computed_express_run_and_price_override(aws, make_settings, engine, now):
    sfn, logs, arn = _machine("express-hand")
    ex = "arn:aws:states:us-east-1:123456789012:express:express-hand:order-7:0b1c2d3e"
    t0 = _ms(now - timedelta(hours=2))
    records = [
        {"id": "1", "type": "ExecutionStarted", "details": {"input": "{}", "inputDetails": {"truncated": False}, "roleArn": ROLE},
         "previous_event_id": "0", "event_timestamp": str(t0), "execution_arn": ex, "redrive_count": "0"},
        {"id": "2", "type": "PassStateEntered", "details": {"name": "P", "input": "{}"}, "previous_event_id": "0",
         "event_timestamp": str(t0 + 20), "execution_arn": ex, "redrive_count": "0"},
        {"id": "3", "type": "PassStateExited", "details": {"name": "P", "output": "{}"}, "previous_event_id": "2",
         "event_timestamp": str(t0 + 1200), "execution_arn": ex, "redrive_count": "0"},
        {"id": "4", "type": "ExecutionSucceeded", "details": {"output": "{}"}, "previous_event_id": "3",
         "event_timestamp": str(t0 + 1234), "execution_arn": ex, "redrive_count": "0"},
    ]
    _put(logs, "express-hand", records)
    # an Express machine without logging has no record of its executions: counted, nothing stored
    sfn.create_state_machine(name="express-dark", definition=DEFINITION, roleArn=ROLE, type="EXPRESS")
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n'
                             '[prices]\nsfn_express_request = 0.000002\nsfn_express_gb_second = 0.0001\n')

    [result] = collect(settings, engine, now=now)
    assert result.status == "succeeded", result.error
    assert result.calls == {"states:ListStateMachines": 1, "states:DescribeStateMachine": 2, "logs:FilterLogEvents": 1}
    assert _details(engine)[-1]["express_unlogged"] == ["express-dark"]
    with engine.connect() as conn:
        run = conn.execute(sa.select(runs)).one()
        steps = conn.execute(sa.select(run_steps)).all()
    assert (run.run_id, run.pipeline, run.status, run.correlation_id) == (f"stepfunctions:{ex}", "express-hand", "SUCCEEDED", "order-7")
    assert (run.ended_at - run.started_at) == timedelta(milliseconds=1234)
    # by hand, with the overridden prices: 1,300 ms x 64 MB (50 MB + a 70-byte definition) = 0.08125 GB-s
    # x $0.0001 = $0.000008125, + one request at $0.000002 = $0.000010125
    assert len(DEFINITION) < 1000
    assert run.cost_usd == pytest.approx(0.000010125, rel=1e-9)
    assert [(s.stage, s.attempt, s.status) for s in steps] == [("P", 1, "SUCCEEDED")]
    # the next pass reads from the last record (minus 5 minutes) and writes nothing new
    [again] = collect(settings, engine, now=now + timedelta(minutes=10))
    assert again.status == "succeeded" and again.rows_written == 0


def test_open_express_execution_is_stored_once_it_ends(aws, make_settings, engine, now):
    _, logs, _ = _machine("express-open")
    ex = "arn:aws:states:us-east-1:123456789012:express:express-open:e1:1"
    t0 = _ms(now - timedelta(hours=1))
    first = [{"id": "1", "type": "ExecutionStarted", "details": {"input": "{}"}, "previous_event_id": "0",
              "event_timestamp": str(t0), "execution_arn": ex}]
    _put(logs, "express-open", first)
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n')
    [one] = collect(settings, engine, now=now - timedelta(minutes=50))
    assert _details(engine)[-1]["express"]["open"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0
    _put(logs, "express-open", [{"id": "2", "type": "ExecutionFailed", "details": {"error": "States.Timeout", "cause": "late"},
                                 "previous_event_id": "1", "event_timestamp": str(t0 + 300_000), "execution_arn": ex}])
    [two] = collect(settings, engine, now=now)
    assert two.status == "succeeded", two.error
    with engine.connect() as conn:
        run = conn.execute(sa.select(runs)).one()
    assert (run.status, run.error_type, run.error_message) == ("FAILED", "States.Timeout", "late")


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.name)
def test_recorded_histories_as_express_execution_logs(path, aws, make_settings, engine, now, shared_dir):
    sources = {s["file"]: s for s in json.loads((path.parent / "SOURCES.json").read_text())}
    summary = sources[path.name]["summary_derived_by_us"]
    events = json.loads(path.read_text())["events"]
    _, logs, _ = _machine("express-rec")
    ex = "arn:aws:states:us-east-1:123456789012:express:express-rec:rec-1:9"
    t0 = _ms(AWS_NOW - timedelta(hours=3))
    _put(logs, "express-rec", execution_log(ex, events, t0, 250))
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n')

    [result] = collect(settings, engine, now=now)
    assert result.status == "succeeded", result.error
    assert "unknown_events" not in _details(engine)[-1]
    with engine.connect() as conn:
        run = conn.execute(sa.select(runs)).one()
        steps = conn.execute(sa.select(run_steps).order_by(run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt)).all()
    assert run.status == TERMINAL[summary["terminal_event"]]
    for state, n in summary["scheduled_attempts_per_state"].items():
        assert [s.attempt for s in steps if s.stage == state] == list(range(1, n + 1)), state
    # duration: the records are 250 ms apart; memory: 50 MB + definition (+ input x Map/Parallel) < 64 MB
    duration_ms = (len(events) - 1) * 250
    assert run.cost_usd == pytest.approx(express_cost(duration_ms, 64, Prices()))
    assert run.cost_usd == pytest.approx(0.000001 + -(-duration_ms // 100) * 100 / 1000 * 0.0625 * 0.00001667)
    if run.status != "SUCCEEDED":
        assert run.error_type and run.error_message
