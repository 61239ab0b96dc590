"""The reference pipeline's ASL, run on moto's Step Functions in execute mode.

Lambda tasks cannot run here (moto needs Docker for them), so the test rewrites the definition:
each Lambda Task becomes a Pass state of the same shape (same ResultPath and Next) whose Result
is what the real handler returned for the same input on moto S3. For the failure path the Task
becomes a Parallel state (which, unlike Pass, takes the Task's own Retry and Catch) whose branch
fails with the error the handler would raise.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import time
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "deploy" / "statemachine" / "reference-pipeline.asl.json"
TEMPLATE = ROOT / "deploy" / "cloudformation" / "reference-pipeline.yaml"
ACCOUNT = "123456789012"
SUBS = {
    "IngestFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pp-ingest",
    "TransformFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pp-transform",
    "SourceBucket": "pp-landing",
    "LakeBucket": "pp-lake",
}


def _handlers():
    spec = importlib.util.spec_from_file_location("reference_handlers", ROOT / "deploy" / "lambda" / "handlers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definition() -> dict:
    text = ASL.read_text()
    for key, value in SUBS.items():
        text = text.replace("${" + key + "}", value)
    left = re.findall(r"\$\{(\w+)\}", text)
    assert not left, f"placeholders without a test value: {left}"
    return json.loads(text)


def test_template_substitutes_every_placeholder():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    props = template["Resources"]["StateMachine"]["Properties"]
    assert set(props["DefinitionSubstitutions"]) == placeholders == set(SUBS)


def _as_pass(state: dict, result: dict) -> dict:
    """A Lambda Task as a Pass of the same shape: same ResultPath and transition."""
    out = {"Type": "Pass", "Result": result, "ResultPath": state["ResultPath"]}
    out.update({k: state[k] for k in ("Next", "End") if k in state})
    return out


def _as_failing(state: dict, error: str, cause: str) -> dict:
    """A Lambda Task as a Parallel whose branch fails: keeps the Task's Retry and Catch."""
    out = {
        "Type": "Parallel",
        "Branches": [{"StartAt": "Raise", "States": {"Raise": {"Type": "Fail", "Error": error, "Cause": cause}}}],
        "ResultPath": state["ResultPath"],
        "Retry": copy.deepcopy(state.get("Retry", [])),
        "Catch": copy.deepcopy(state["Catch"]),
    }
    out.update({k: state[k] for k in ("Next", "End") if k in state})
    return out


def _lambda_tasks(defn: dict) -> dict[str, dict]:
    return {name: s for name, s in defn["States"].items() if s["Type"] == "Task" and ":function:" in s["Resource"]}


def _run(sfn, defn: dict, payload: dict, name: str) -> tuple[dict, list[str], list[dict]]:
    arn = sfn.create_state_machine(
        name=name, definition=json.dumps(defn), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run", input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 60
    while True:
        desc = sfn.describe_execution(executionArn=ex)
        if desc["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    events = sfn.get_execution_history(executionArn=ex)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return desc, entered, events


@pytest.fixture
def sfn(aws):
    aws.enable_stepfunctions_execution()
    return boto3.client("stepfunctions")


@pytest.fixture
def handler_results(aws):
    """What the real handlers return for one scheduled run over one file, on moto S3."""
    handlers = _handlers()
    s3 = boto3.client("s3")
    for bucket in (SUBS["SourceBucket"], SUBS["LakeBucket"]):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=SUBS["SourceBucket"], Key="incoming/orders/a.csv",
                  Body=b"order_id,customer_id,amount,currency,created_at\no-1,c,1.25,USD,2026-11-20T10:00:00+00:00\n")
    base = {"source_bucket": SUBS["SourceBucket"], "source_prefix": "incoming", "lake_bucket": SUBS["LakeBucket"]}
    ingested = handlers.ingest({**base, "run_id": "sched-run", "trigger": "schedule", "pipeline": "orders", "key": ""})
    loaded = handlers.transform({**base, "ingest": ingested})
    empty = handlers.ingest({**base, "run_id": "sched-run-2", "trigger": "schedule", "pipeline": "orders", "key": ""})
    return ingested, loaded, empty


def test_definition_retries_with_backoff_and_catches_every_task():
    defn = _definition()
    tasks = _lambda_tasks(defn)
    assert set(tasks) == {"Ingest", "Transform"}
    for name, task in tasks.items():
        transient = task["Retry"][0]
        assert "TransientStageError" in transient["ErrorEquals"]
        assert transient["BackoffRate"] > 1 and transient["MaxAttempts"] >= 2 and transient["JitterStrategy"] == "FULL"
        assert all(r["BackoffRate"] >= 1 for r in task["Retry"])
        catch = task["Catch"][-1]
        assert catch["ErrorEquals"] == ["States.ALL"]
        # the failure path ends in a Fail state
        state = defn["States"][catch["Next"]]
        while state["Type"] != "Fail":
            state = defn["States"][state["Next"]]
        assert "StageError" not in transient["ErrorEquals"], f"{name}: a permanent error must not be retried"


def test_happy_path_runs_ingest_then_transform(sfn, handler_results):
    ingested, loaded, _ = handler_results
    defn = _definition()
    tasks = _lambda_tasks(defn)
    defn["States"]["Ingest"] = _as_pass(tasks["Ingest"], ingested)
    defn["States"]["Transform"] = _as_pass(tasks["Transform"], loaded)
    payload = {"trigger": "schedule", "pipeline": "orders", "key": ""}
    desc, entered, _ = _run(sfn, defn, payload, "happy")
    assert desc["status"] == "SUCCEEDED", desc
    assert entered == ["Ingest", "AnyInputs", "Transform", "Loaded"]
    assert json.loads(desc["output"]) == {**payload, "ingest": ingested, "transform": loaded}


def test_a_sweep_with_nothing_new_skips_the_transform(sfn, handler_results):
    _, loaded, empty = handler_results
    defn = _definition()
    tasks = _lambda_tasks(defn)
    defn["States"]["Ingest"] = _as_pass(tasks["Ingest"], empty)
    defn["States"]["Transform"] = _as_pass(tasks["Transform"], loaded)
    desc, entered, _ = _run(sfn, defn, {"trigger": "schedule", "pipeline": "orders", "key": ""}, "empty")
    assert desc["status"] == "SUCCEEDED"
    assert entered == ["Ingest", "AnyInputs", "NothingToLoad"]


def test_a_failed_transform_takes_the_catch_to_the_failure_path(sfn, handler_results):
    ingested, _, _ = handler_results
    defn = _definition()
    tasks = _lambda_tasks(defn)
    defn["States"]["Ingest"] = _as_pass(tasks["Ingest"], ingested)
    cause = "transform: input orders/a.csv changed or vanished after ingest"
    defn["States"]["Transform"] = _as_failing(tasks["Transform"], "StageError", cause)
    desc, entered, events = _run(sfn, defn, {"trigger": "event", "pipeline": "", "key": "incoming/orders/a.csv"}, "fails")
    assert desc["status"] == "FAILED", desc
    assert entered[:3] == ["Ingest", "AnyInputs", "Transform"]
    assert entered[-2:] == ["TransformFailed", "Failed"]
    # the run fails with the stage's own error and message (Fail's ErrorPath/CausePath)
    failed = [e for e in events if e["type"] == "ExecutionFailed"][-1]["executionFailedEventDetails"]
    assert (failed["error"], failed["cause"]) == ("StageError", cause)


def test_a_failed_ingest_never_reaches_the_transform(sfn, handler_results):
    _, loaded, _ = handler_results
    defn = _definition()
    tasks = _lambda_tasks(defn)
    defn["States"]["Ingest"] = _as_failing(tasks["Ingest"], "StageError", "ingest: cannot tell the pipeline from key 'x'")
    defn["States"]["Transform"] = _as_pass(tasks["Transform"], loaded)
    desc, entered, _ = _run(sfn, defn, {"trigger": "event", "pipeline": "", "key": "x"}, "ingest-fails")
    assert desc["status"] == "FAILED"
    assert "Transform" not in entered
    assert entered[-2:] == ["IngestFailed", "Failed"]


def test_a_transient_failure_is_retried_then_caught(sfn, handler_results):
    ingested, _, _ = handler_results
    defn = _definition()
    tasks = _lambda_tasks(defn)
    defn["States"]["Ingest"] = _as_pass(tasks["Ingest"], ingested)
    failing = _as_failing(tasks["Transform"], "TransientStageError", "transform: SlowDown: please reduce your request rate")
    # same retry policy, shortened so the test does not wait minutes: 2 retries, 1 s then 2 s at most
    failing["Retry"][0].update(IntervalSeconds=1, MaxAttempts=2, MaxDelaySeconds=2)
    defn["States"]["Transform"] = failing
    desc, entered, events = _run(sfn, defn, {"trigger": "schedule", "pipeline": "orders", "key": ""}, "transient")
    assert desc["status"] == "FAILED"
    # the first attempt plus two retries, then the Catch
    assert entered.count("Transform") == 1
    assert [e["type"] for e in events].count("ParallelStateStarted") == 3, [e["type"] for e in events]
    failed = [e for e in events if e["type"] == "ExecutionFailed"][-1]["executionFailedEventDetails"]
    assert failed["error"] == "TransientStageError"
