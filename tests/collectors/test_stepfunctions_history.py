"""Real Step Functions histories (../shared/data/aws-shapes/sfn-history) through the collector.

Each recorded GetExecutionHistory answer is served by the local AWS's history stand-in
(devkit/localaws/stepfunctions.py) for an execution started in moto; the collector reads it over
HTTP like any other, and what comes out is checked against what the data set's SOURCES.json says
a reader should get (attempts per state, how the execution ended) and, for the files known here,
against figures worked out by hand from the events.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from collectors.runner import collect
from collectors.stepfunctions import KNOWN_EVENTS
from dashboard.charts import run_timeline
from devkit.localaws.stepfunctions import StepFunctionsHistoryStandIn
from store.runs import run_detail
from store.schema import run_steps, runs

ROLE = "arn:aws:iam::123456789012:role/sfn"
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
TERMINAL = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "CANCELLED"}
# worked out by hand from each file's events: billed transitions (states entered + retries),
# the run's retries, its error type, and the steps (stage, attempt, status, error type)
BY_HAND = {
    "localstack-aws-recorded__lambda-service-invoke-retry-4-attempts-then-catch.history.json": (
        5, 3, None,
        [("InvokeLambdaWithRetry", 1, "FAILED", "Exception"), ("InvokeLambdaWithRetry", 2, "FAILED", "Exception"),
         ("InvokeLambdaWithRetry", 3, "FAILED", "Exception"), ("InvokeLambdaWithRetry", 4, "FAILED", "Exception"),
         ("HandleError", 1, "SUCCEEDED", None)]),
    "localstack-aws-recorded__legacy-lambda-arn-retry-3-attempts-execution-failed.history.json": (
        3, 2, "Exception",
        [("LambdaTask", 1, "FAILED", "Exception"), ("LambdaTask", 2, "FAILED", "Exception"), ("LambdaTask", 3, "FAILED", "Exception")]),
    "localstack-aws-recorded__inline-map-iteration-fails-execution-failed.history.json": (
        12, 0, "SomeFailure",
        [("StartState", 1, "SUCCEEDED", None), ("MapState", 1, "FAILED", "SomeFailure")]),
    "localstack-aws-recorded__parallel-state-retried-3-times-execution-failed.history.json": (
        6, 2, "FailureType",
        [("ParallelState", 1, "FAILED", None), ("ParallelState", 2, "FAILED", None), ("ParallelState", 3, "FAILED", "FailureType")]),
}


def _shapes(shared_dir):
    folder = shared_dir / "data" / "aws-shapes" / "sfn-history"
    sources = {s["file"]: s for s in json.loads((folder / "SOURCES.json").read_text()) if s["file"].endswith(".history.json")}
    return folder, sources


def _history_files():
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes" / "sfn-history"
    return sorted(p.name for p in folder.glob("*.history.json"))


def _start(aws, now, name, events):
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name=name, definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=f"{name}-1", input="{}")["executionArn"]
    started = sfn.describe_execution(executionArn=arn)["startDate"]
    aws.app(StepFunctionsHistoryStandIn).record(arn, events, started_at=started)
    return sfn, arn


@pytest.mark.parametrize("file", _history_files())
def test_recorded_history_through_the_collector(file, aws, make_settings, engine, now, shared_dir):
    folder, sources = _shapes(shared_dir)
    events = json.loads((folder / file).read_text())["events"]
    summary = sources[file]["summary_derived_by_us"]
    sfn, arn = _start(aws, now, "recorded", events)
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n[collectors.stepfunctions]\nhistory_page_size = 5\n')

    [result] = collect(settings, engine, now=sfn.describe_execution(executionArn=arn)["startDate"] + timedelta(hours=1))
    assert result.status == "succeeded", result.error
    pages = -(-len(events) // 5)
    assert result.calls == {"states:ListStateMachines": 1, "states:ListExecutions": 1, "states:GetExecutionHistory": pages}
    with engine.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.run_id == f"stepfunctions:{arn}")).one()
        steps = conn.execute(sa.select(run_steps).where(run_steps.c.run_id == run.run_id)
                             .order_by(run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt)).all()
    # what the data set says a reader should get
    assert run.status == TERMINAL[summary["terminal_event"]]
    for state, n in summary["scheduled_attempts_per_state"].items():
        assert [s.attempt for s in steps if s.stage == state] == list(range(1, n + 1)), state
        assert all(s.error_type for s in steps if s.stage == state and s.attempt < n), "a retried attempt keeps its error"
    assert set(summary["event_type_counts"]) <= KNOWN_EVENTS
    entered = sum(n for kind, n in summary["event_type_counts"].items() if kind.endswith("StateEntered"))
    assert run.cost_usd == pytest.approx((entered + run.retries) * settings.prices.sfn_transition)
    if run.status != "SUCCEEDED":
        assert run.error_type and run.error_message
    # every attempt after the first was scheduled when the one before it ended
    for a, b in zip(steps, steps[1:], strict=False):
        if a.stage == b.stage and b.attempt == a.attempt + 1:
            assert a.next_retry_at == b.started_at and a.ended_at <= b.started_at
    if file in BY_HAND:
        transitions, retries, error, expected = BY_HAND[file]
        assert (run.cost_usd / settings.prices.sfn_transition, run.retries, run.error_type) == (pytest.approx(transitions), retries, error)
        assert [(s.stage, s.attempt, s.status, s.error_type) for s in steps] == expected


def test_retried_lambda_keeps_each_cause_and_map_summary(aws, make_settings, engine, now, shared_dir):
    folder, _ = _shapes(shared_dir)
    retry = json.loads((folder / "localstack-aws-recorded__lambda-service-invoke-retry-4-attempts-then-catch.history.json").read_text())["events"]
    inline = json.loads((folder / "localstack-aws-recorded__inline-map-iteration-fails-execution-failed.history.json").read_text())["events"]
    _, retry_arn = _start(aws, now, "retry", retry)
    sfn, map_arn = _start(aws, now, "inline", inline)
    settings = make_settings('[collectors]\nsources = ["stepfunctions"]\n')
    [result] = collect(settings, engine, now=sfn.describe_execution(executionArn=map_arn)["startDate"] + timedelta(hours=1))
    assert result.calls["states:GetExecutionHistory"] == 2  # one page of up to 1000 events each
    with engine.connect() as conn:
        rows = {(r.stage, r.attempt): r for r in conn.execute(sa.select(run_steps)).all()}
        run = conn.execute(sa.select(runs).where(runs.c.run_id == f"stepfunctions:{map_arn}")).one()
    # the Lambda error document's errorMessage, per attempt; the run succeeded through its Catch
    assert [rows[("InvokeLambdaWithRetry", n)].error_message for n in range(1, 5)] == ["Some exception was raised."] * 4
    # Map: 7 items in, 4 iterations succeeded, 1 failed (index 4 reached the Fail state)
    m = rows[("MapState", 1)]
    assert (m.records_in, m.records_out, m.records_rejected, m.error_type) == (7, 4, 1, "SomeFailure")
    assert run.error_message == "state MapState: This state machines raises a 'SomeFailure' failure."
    # the run detail (what the dashboard's run page reads and draws): every attempt a bar
    with engine.connect() as conn:
        detail = run_detail(conn, f"stepfunctions:{retry_arn}")
    assert detail is not None and detail.run["retries"] == 3
    assert detail.run["cost_usd"] == pytest.approx(5 * settings.prices.sfn_transition)  # 1 entry + 3 retries + HandleError
    labels = {str(y) for trace in run_timeline(detail.steps).data for y in (trace.y if trace.y is not None else ())}
    assert labels == {f"InvokeLambdaWithRetry #{n}" for n in range(1, 5)} | {"HandleError #1"}
    # a second pass: nothing new, no history read again
    [again] = collect(settings, engine, now=now + timedelta(days=400))
    assert "states:GetExecutionHistory" not in again.calls


def test_stand_in_pages_as_aws_does(aws, now, shared_dir):
    folder, _ = _shapes(shared_dir)
    events = json.loads((folder / "localstack-aws-recorded__legacy-lambda-arn-retry-3-attempts-execution-failed.history.json").read_text())["events"]
    sfn, arn = _start(aws, now, "pages", events)
    first = sfn.get_execution_history(executionArn=arn, maxResults=5)
    second = sfn.get_execution_history(executionArn=arn, maxResults=5, nextToken=first["nextToken"])
    third = sfn.get_execution_history(executionArn=arn, maxResults=5, nextToken=second["nextToken"])
    assert [e["id"] for e in first["events"] + second["events"] + third["events"]] == list(range(1, 13))
    assert "nextToken" not in third
    assert len(sfn.get_execution_history(executionArn=arn)["events"]) == 12  # default page: 100
    backwards = sfn.get_execution_history(executionArn=arn, maxResults=2, reverseOrder=True)
    assert [e["type"] for e in backwards["events"]] == ["ExecutionFailed", "LambdaFunctionFailed"]
    # causes come back as JSON strings, times as times, one second apart from the start
    failed = first["events"][4]
    assert json.loads(failed["lambdaFunctionFailedEventDetails"]["cause"])["errorMessage"] == "Some exception was raised."
    assert first["events"][1]["timestamp"] - first["events"][0]["timestamp"] == timedelta(seconds=1)
    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False)["events"][0]
    assert "input" not in bare["executionStartedEventDetails"]
    with pytest.raises(ClientError) as bad:
        sfn.get_execution_history(executionArn=arn, maxResults=5, nextToken=first["nextToken"], reverseOrder=True)
    assert bad.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as big:
        sfn.get_execution_history(executionArn=arn, maxResults=1001)
    assert big.value.response["Error"]["Code"] == "ValidationException"
    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"]) == ("FAILED", "Exception")
