from __future__ import annotations

import json
import time

import boto3
import sqlalchemy as sa

from collectors.runner import collect
from store.schema import run_steps, runs

ROLE = "arn:aws:iam::123456789012:role/sfn"
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:customer-etl"
ETL = {
    "StartAt": "Extract",
    "States": {
        "Extract": {"Type": "Pass", "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Reject"}], "Default": "Load"},
        "Reject": {"Type": "Fail", "Error": "DataQualityError", "Cause": "12 rows failed validation"},
        "Load": {"Type": "Pass", "End": True},
    },
}
# Held 8 s: long enough that the first pass sees it running on a loaded 2-core CI machine (2 s was not)
SLOW = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 8, "Next": "Done"}, "Done": {"Type": "Succeed"}}}
CONFIG = f"""
[collectors]
sources = ["stepfunctions"]
[[pipelines]]
name = "sfn_customer_etl"
source = "stepfunctions"
resource = "{ARN}"
"""


def _wait_ended(sfn, arns, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(sfn.describe_execution(executionArn=a)["status"] != "RUNNING" for a in arns):
            return
        time.sleep(0.05)
    raise AssertionError("executions did not end")


def test_executions_success_failure_and_running(aws, make_settings, engine, now):
    aws.enable_stepfunctions_execution()
    sfn = boto3.client("stepfunctions")
    etl = sfn.create_state_machine(name="customer-etl", definition=json.dumps(ETL), roleArn=ROLE)["stateMachineArn"]
    slow = sfn.create_state_machine(name="slow", definition=json.dumps(SLOW), roleArn=ROLE)["stateMachineArn"]
    assert etl == ARN
    ok = sfn.start_execution(stateMachineArn=etl, name="ok-1", input=json.dumps({"fail": False}))["executionArn"]
    bad = sfn.start_execution(stateMachineArn=etl, name="bad-1", input=json.dumps({"fail": True}))["executionArn"]
    _wait_ended(sfn, [ok, bad])
    held = sfn.start_execution(stateMachineArn=slow, name="held-1", input="{}")["executionArn"]
    settings = make_settings(CONFIG)

    [first] = collect(settings, engine, now=now)
    assert first.status == "succeeded", first.error
    with engine.connect() as conn:
        got = {r.run_id: r for r in conn.execute(sa.select(runs)).all()}
        assert set(got) == {f"stepfunctions:{ok}", f"stepfunctions:{bad}", f"stepfunctions:{held}"}
        good, failed, running = got[f"stepfunctions:{ok}"], got[f"stepfunctions:{bad}"], got[f"stepfunctions:{held}"]
        assert (good.pipeline, good.status, good.error_type, good.correlation_id) == ("sfn_customer_etl", "SUCCEEDED", None, "ok-1")
        assert good.cost_usd == 3 * settings.prices.sfn_transition  # Extract, Check, Load
        assert (failed.status, failed.error_type, failed.error_message) == (
            "FAILED", "DataQualityError", "state Reject: 12 rows failed validation")
        assert failed.cost_usd == 3 * settings.prices.sfn_transition  # Extract, Check, Reject
        assert (running.pipeline, running.status, running.cost_usd) == ("slow", "RUNNING", None)
        steps = conn.execute(sa.select(run_steps.c.stage, run_steps.c.attempt, run_steps.c.status, run_steps.c.error_type)
                             .where(run_steps.c.run_id == f"stepfunctions:{bad}").order_by(run_steps.c.started_at, run_steps.c.stage)).all()
        assert sorted(steps) == [("Check", 1, "SUCCEEDED", None), ("Extract", 1, "SUCCEEDED", None),
                                 ("Reject", 1, "FAILED", "DataQualityError")]
    # history read once per ended execution: 2 machines listed once, 2 histories
    assert first.calls == {"states:ListStateMachines": 1, "states:ListExecutions": 2, "states:GetExecutionHistory": 2}

    _wait_ended(sfn, [held])
    [second] = collect(settings, engine, now=now)
    assert second.status == "succeeded"
    assert second.calls == {"states:ListStateMachines": 1, "states:ListExecutions": 2, "states:DescribeExecution": 1,
                            "states:GetExecutionHistory": 1}
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.status).where(runs.c.run_id == f"stepfunctions:{held}")).scalar_one() == "SUCCEEDED"
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 3

    [third] = collect(settings, engine, now=now)
    assert (third.rows_written, third.calls) == (0, {"states:ListStateMachines": 1, "states:ListExecutions": 2})
