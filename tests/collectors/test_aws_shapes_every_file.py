"""Every file of ../shared/data/aws-shapes through the collector that reads its kind, over HTTP.

``READERS`` names, per file pattern, the reader that puts a file where AWS would (a recorded
execution history behind the Step Functions stand-in, an execution log or a Lambda/Glue log
group in CloudWatch Logs, recorded job runs behind the Glue stand-in), runs one collector pass,
and checks what was stored against the data set's own expectations (``SOURCES.json``
``summary_derived_by_us``, ``expected.json``). ``test_every_file_has_one_reader`` fails for a file
no pattern claims, so a new file in the data set is either read here or reported.

Only the data set's metadata (README.md, SOURCES.json, expected.json) and licence files are not
inputs.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW
from sfn_records import execution_log

from collectors.base import RunRow
from collectors.glue import WORKER_DPU
from collectors.runner import collect
from collectors.stepfunctions import (
    KNOWN_EVENTS,
    STATE_TYPES,
    express_cost,
    express_memory_mb,
    steps_from_history,
)
from devkit.localaws.glue import GlueJobRunsStandIn
from devkit.localaws.stepfunctions import StepFunctionsHistoryStandIn
from pipepulse.settings import Prices
from pipepulse.vocab import FAILED
from store.schema import lambda_invocations, run_logs, run_steps, runs
from store.writes import upsert

pytestmark = pytest.mark.aws_clock
SHAPES = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes"
if not SHAPES.is_dir():
    SHAPES = Path("/work/shared/data/aws-shapes")
NOT_INPUTS = ("README.md", "*/SOURCES.json", "*/expected.json", "*/LICENSES/*")
ROLE = "arn:aws:iam::123456789012:role/sfn"
TERMINAL = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "CANCELLED", None: "RUNNING"}
GLUE_STATUS = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "TIMEOUT": "TIMED_OUT", "STOPPED": "CANCELLED", "ERROR": "FAILED"}
T0 = AWS_NOW - timedelta(hours=6)


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def _sources(folder: str) -> dict[str, dict]:
    return {s["file"]: s for s in json.loads((SHAPES / folder / "SOURCES.json").read_text())}


def _rows(engine, table, *order):
    with engine.connect() as conn:
        return conn.execute(sa.select(table).order_by(*order)).all()


def _one_pass(settings, engine, now):
    [result] = collect(settings, engine, now=now)
    assert result.status == "succeeded", result.error
    return result


def _put_logs(group: str, stream: str, events: list[dict]) -> None:
    logs = boto3.client("logs")
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


# ---- Step Functions ---------------------------------------------------------------------------

def _express_machine(name: str, definition: str) -> str:
    group = f"/aws/vendedlogs/states/{name}"
    boto3.client("logs").create_log_group(logGroupName=group)
    return boto3.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn=ROLE, type="EXPRESS",
        loggingConfiguration={"level": "ALL", "includeExecutionData": True, "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"}}]},
    )["stateMachineArn"]


def _check_steps(steps, summary) -> list[tuple]:
    for state, n in summary["scheduled_attempts_per_state"].items():
        assert [s.attempt for s in steps if s.stage == state] == list(range(1, n + 1)), state
    return [(s.stage, s.attempt, s.status, s.error_type) for s in steps]


def read_sfn_history(path: Path, engine, make_settings, aws, now) -> dict:
    """A recorded GetExecutionHistory, served for a Standard execution of its own definition."""
    summary = _sources("sfn-history")[path.name]["summary_derived_by_us"]
    events = json.loads(path.read_text())["events"]
    definition = path.with_name(path.name.replace(".history.json", ".definition.json5")).read_text()
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(name="recorded", definition=definition, roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="recorded-1", input="{}")["executionArn"]
    started = sfn.describe_execution(executionArn=arn)["startDate"]
    aws.app(StepFunctionsHistoryStandIn).record(arn, events, started_at=started)
    result = _one_pass(make_settings('[collectors]\nsources = ["stepfunctions"]\n'), engine, started + timedelta(hours=1))
    assert result.calls["states:GetExecutionHistory"] == 1
    [run] = _rows(engine, runs)
    steps = _rows(engine, run_steps, run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt)
    assert run.status == TERMINAL[summary["terminal_event"]]
    assert set(summary["event_type_counts"]) <= KNOWN_EVENTS
    got = _check_steps(steps, summary)
    transitions = run.cost_usd / Prices().sfn_transition
    entered = sum(n for k, n in summary["event_type_counts"].items() if k.endswith("StateEntered"))
    assert transitions == pytest.approx(entered + run.retries)
    return {"status": run.status, "retries": run.retries, "transitions": round(transitions), "error": run.error_type,
            "steps": got}


def read_sfn_definition(path: Path, engine, make_settings, aws, now) -> dict:
    """The definition of a recorded execution as an Express machine, the history as its execution log."""
    history = path.with_name(path.name.replace(".definition.json5", ".history.json"))
    summary = _sources("sfn-history")[history.name]["summary_derived_by_us"]
    events = json.loads(history.read_text())["events"]
    definition = path.read_text()
    _express_machine("recorded-express", definition)
    execution = "arn:aws:states:us-east-1:123456789012:express:recorded-express:rec-1:1"
    records = execution_log(execution, events, _ms(T0), 250)
    _put_logs("/aws/vendedlogs/states/recorded-express", "states/recorded-express/1",
              [{"timestamp": int(r["event_timestamp"]), "message": json.dumps(r)} for r in records])
    result = _one_pass(make_settings('[collectors]\nsources = ["stepfunctions"]\n'), engine, now)
    assert result.calls == {"states:ListStateMachines": 1, "states:DescribeStateMachine": 1, "logs:FilterLogEvents": 1}
    [run] = _rows(engine, runs)
    steps = _rows(engine, run_steps, run_steps.c.started_at, run_steps.c.stage, run_steps.c.attempt)
    assert run.status == TERMINAL[summary["terminal_event"]]
    got = _check_steps(steps, summary)
    duration_ms = (len(events) - 1) * 250
    start_input = next((v for k, v in events[0].items() if k.endswith("EventDetails")), {}).get("input")
    data = len((start_input if isinstance(start_input, str) else json.dumps(start_input)).encode()) if start_input is not None else 0
    fan_out = sum(1 for e in events if e["type"] in {"MapIterationStarted", "ParallelStateStarted"})
    memory = express_memory_mb(len(definition.encode()), data, fan_out)
    assert run.cost_usd == pytest.approx(express_cost(duration_ms, memory, Prices()))
    return {"status": run.status, "express_cost_usd": run.cost_usd, "memory_mb": round(memory, 4), "steps": got}


def _states(definition: dict) -> list[dict]:
    out = []
    for state in (definition.get("States") or {}).values():
        out.append(state)
        for inner in [state.get("Iterator"), state.get("ItemProcessor"), *(state.get("Branches") or [])]:
            if isinstance(inner, dict):
                out.extend(_states(inner))
    return out


def read_asl(path: Path, engine, make_settings, aws, now) -> dict:
    """A public definition (no execution of it was recorded): created over HTTP as an Express machine,
    read back by the collector (definition size -> memory estimate); every state type it uses is
    one the history reader knows, and the features the data set lists are found in it."""
    text = path.read_text()
    definition = json.loads(text)
    features = _sources("asl")[path.name]["features_detected"]
    _express_machine("public-asl", text)
    result = _one_pass(make_settings('[collectors]\nsources = ["stepfunctions"]\n'), engine, now)
    assert result.calls == {"states:ListStateMachines": 1, "states:DescribeStateMachine": 1, "logs:FilterLogEvents": 1}
    assert _rows(engine, runs) == []  # no execution logged
    states = _states(definition)
    types = sorted({s["Type"] for s in states})
    assert set(types) <= set(STATE_TYPES)
    assert {f for f in features if f in STATE_TYPES} <= set(types)
    sync = sorted({s["Resource"] for s in states if str(s.get("Resource", "")).endswith(".sync")})
    retries = [r.get("MaxAttempts", 3) for s in states for r in s.get("Retry") or []]
    memory = express_memory_mb(len(text.encode()))
    return {"state_types": types, "sync_integrations": sync, "retry_max_attempts": retries,
            "express_memory_mb": round(memory, 4), "billed_mb": 64 if memory <= 64 else None}


def read_sfn_partial(path: Path, engine, make_settings, aws, now) -> dict:
    """A documentation excerpt elided with "...": not JSON, and without ExecutionStarted or an end,
    so it cannot be served as an ended execution (the collector reads histories of ended ones);
    its complete event objects are read by the same history reader."""
    text = path.read_text()
    decoder = json.JSONDecoder()
    events, i = [], 0
    while (i := text.find("{", i)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict) and "type" in obj and "id" in obj:
            events.append(obj)
            i = end
        else:
            i += 1
    assert [e["type"] for e in events] and {e["type"] for e in events} <= KNOWN_EVENTS
    for e in events:
        e["timestamp"] = datetime.fromisoformat(e["timestamp"])
    history = steps_from_history("stepfunctions:doc", events, "RUNNING")
    assert [s.stage for s in history.steps] == [e[k]["name"] for e in events for k in e if k == "stateEnteredEventDetails"]
    return {"events": [e["type"] for e in events],
            "steps": [(s.stage, s.attempt, s.status) for s in history.steps], "transitions": history.transitions}


# ---- Glue -----------------------------------------------------------------------------------

def _job_runs(doc: dict) -> list[dict]:
    if "JobRuns" in doc:
        return doc["JobRuns"]
    if "JobRun" in doc:
        return [doc["JobRun"]]
    return [v for v in doc.values() if isinstance(v, dict) and "JobRunState" in v]  # a Task's ResultPath


def _glue_cost(e: dict) -> float:
    """By hand from the data set's fields: DPU x billed seconds x $0.44 / 3600."""
    dpu = e["number_of_workers"] * WORKER_DPU[e["worker_type"]] if e["worker_type"] else e["max_capacity"]
    seconds = e["execution_time_s"]
    if float(e["glue_version"]) >= 2 or (not e["worker_type"] and e["max_capacity"] <= 1):
        seconds = max(seconds, 60)
    return dpu * seconds * 0.44 / 3600


def _read_glue_runs(name: str, doc: dict, engine, make_settings, aws, now) -> dict:
    expected = {r["id"]: r for f in json.loads((SHAPES / "glue" / "expected.json").read_text())["job_runs"]
                if f["file"] == name for r in f["runs"]}
    records = _job_runs(doc)
    job = records[0]["JobName"]
    boto3.client("glue").create_job(Name=job, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
    aws.app(GlueJobRunsStandIn).record(job, records, newest_started_at=now - timedelta(hours=2))
    result = _one_pass(make_settings('[collectors]\nsources = ["glue"]\n'), engine, now)
    assert result.calls == {"glue:GetJobs": 1, "glue:GetJobRuns": 1}
    got = {r.correlation_id: r for r in _rows(engine, runs)}
    assert set(got) == set(expected)
    out = []
    for rid, e in expected.items():
        run = got[rid]
        assert run.status == GLUE_STATUS[e["state"]]
        assert run.attempt == e["attempt"] + 1
        span = (e["completed_on"] - e["started_on"]) / (1000 if e["timestamp_format"] == "epoch_millis" else 1)
        assert run.duration_seconds == pytest.approx(span, abs=0.01)
        assert run.error_message == e["error_message"]
        assert run.cost_usd == pytest.approx(_glue_cost(e))
        out.append((rid[:12], run.status, run.attempt, round(run.duration_seconds, 2), round(run.cost_usd, 5)))
    return {"runs": out}


def read_glue_runs(path: Path, engine, make_settings, aws, now) -> dict:
    return _read_glue_runs(path.name, json.loads(path.read_text()), engine, make_settings, aws, now)


def read_glue_doc_text(path: Path, engine, make_settings, aws, now) -> dict:
    """The verbatim documentation block: the documented transformation (CR and 4-space indentation
    removed, wrapped strings re-joined) gives the .json beside it, which is then read as such."""
    lines = [ln[4:] if ln.startswith("    ") else ln for ln in path.read_text().replace("\r", "").split("\n")]
    joined: list[str] = []
    for line in lines:
        if joined and len(re.findall(r'(?<!\\)"', joined[-1])) % 2 == 1:  # inside a string wrapped by the docs
            joined[-1] += line.lstrip()
        else:
            joined.append(line)
    doc = json.loads("\n".join(joined))
    sibling = path.with_name(path.name.replace(".output.txt", ".json"))
    assert doc == json.loads(sibling.read_text())
    return _read_glue_runs(sibling.name, doc, engine, make_settings, aws, now)


def read_glue_log(path: Path, engine, make_settings, aws, now) -> dict:
    """Each line as one event of a failed run's stream in Glue's error log group."""
    job_run = "jr_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    with engine.begin() as conn:
        upsert(conn, runs, [RunRow(run_id=f"glue:j:{job_run}", pipeline="j", source="glue", status=FAILED, started_at=T0,
                                   ended_at=T0 + timedelta(minutes=30), correlation_id=job_run).as_row()], now=now)
    expected = [e for e in json.loads((SHAPES / "glue" / "expected.json").read_text())["logs"] if e["file"] == path.name]
    lines = path.read_text().splitlines()
    _put_logs("/aws-glue/jobs/error", job_run, [{"timestamp": _ms(T0) + 1000 * i, "message": ln} for i, ln in enumerate(lines)])
    _one_pass(make_settings('[collectors]\nsources = ["logs"]\n[collectors.logs]\nglue_groups = ["/aws-glue/jobs/error"]\n'),
              engine, now)
    got = [(r.level, r.message) for r in _rows(engine, run_logs, run_logs.c.ts)]
    want = [(e["expected"]["level"] or "STDERR", e["expected"]["message"]) for e in expected]
    assert got == want
    return {"rows": len(got), "levels": sorted({lvl for lvl, _ in got})}


# ---- Lambda -----------------------------------------------------------------------------------

_REPORT = re.compile(r"REPORT RequestId: (\S+).*?Duration: ([\d.]+) ms.*?Billed Duration: (\d+) ms.*?Memory Size: (\d+) MB"
                     r".*?Max Memory Used: (\d+) MB(?:.*?Init Duration: ([\d.]+) ms)?", re.S)


def _lambda_pass(events: list[dict], engine, make_settings, now) -> list:
    _put_logs("/aws/lambda/shapes", "2026/01/01/[$LATEST]0", events)
    _one_pass(make_settings('[collectors]\nsources = ["logs"]\n[collectors.logs.lambda_functions]\nshapes = "p"\n'), engine, now)
    return _rows(engine, lambda_invocations, lambda_invocations.c.ended_at)


def read_lambda_log(path: Path, engine, make_settings, aws, now) -> dict:
    """Each sample of the file (expected.json) as one CloudWatch event of a function's log group:
    every REPORT sample becomes one invocation row with its figures; nothing else does."""
    samples = [s for s in json.loads((SHAPES / "lambda-logs" / "expected.json").read_text())["samples"] if s["file"] == path.name]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    events = [{"timestamp": _ms(T0) + 100 * i, "message": "".join(lines[s["first_line"] - 1:s["last_line"]])}
              for i, s in enumerate(samples)]
    got = {(r.request_id, r.duration_ms, r.billed_duration_ms, r.memory_size_mb, r.max_memory_used_mb, r.init_duration_ms)
           for r in _lambda_pass(events, engine, make_settings, now)}
    reports = [s["expected"] for s in samples if isinstance(s["expected"], dict) and s["expected"].get("kind") in ("REPORT", "platform.report")]
    want = {(e["request_id"], e["duration_ms"], e["billed_duration_ms"], e["memory_size_mb"], e["max_memory_used_mb"],
             e.get("init_duration_ms")) for e in reports}
    assert got == want
    return {"samples": len(samples), "invocation_rows": len(got)}


def read_lambda_payload(path: Path, engine, make_settings, aws, now) -> dict:
    """A CloudWatch Logs payload (subscription ``logEvents`` or GetLogEvents ``events``): its events
    put back into a log group as AWS wrote them; each REPORT event becomes one row with the figures
    an independent regular expression reads from it. Two Datadog fixtures carry literal
    backslash-t / backslash-n sequences where Lambda writes tabs and newlines (SOURCES.json: "fixture
    escaping artefact"); for those the artefact is undone, nothing else is changed."""
    doc = json.loads(path.read_text())
    raw = doc.get("logEvents") or doc.get("events") or []
    assert raw, "a payload with events"
    fixtures = json.loads((SHAPES / "lambda-logs" / "SOURCES.json").read_text())["cloudwatch_payload_fixtures"]
    artefact = "literal backslash" in next(f for f in fixtures if f["file"] == path.name)["what_it_shows"]
    first = min(e["timestamp"] for e in raw)
    events = sorted(({"timestamp": _ms(T0) + (e["timestamp"] - first),
                      "message": e["message"].replace("\\t", "\t").replace("\\n", "\n") if artefact else e["message"]}
                     for e in raw), key=lambda e: e["timestamp"])
    got = {(r.request_id, r.duration_ms, r.billed_duration_ms, r.memory_size_mb, r.max_memory_used_mb, r.init_duration_ms)
           for r in _lambda_pass(events, engine, make_settings, now)}
    want = set()
    for e in raw:
        m = _REPORT.search(e["message"].replace("\\t", "\t").replace("\\n", "\n"))
        if m:
            want.add((m[1], float(m[2]), float(m[3]), int(m[4]), int(m[5]), float(m[6]) if m[6] else None))
    assert got == want
    return {"events": len(raw), "invocation_rows": len(got), "artefact_undone": artefact}


READERS: list[tuple[str, Callable[..., dict]]] = [
    ("sfn-history/*.history.json", read_sfn_history),
    ("sfn-history/*.definition.json5", read_sfn_definition),
    ("sfn-history/*.partial-history.txt", read_sfn_partial),
    ("asl/*.asl.json", read_asl),
    ("glue/*get-job-run*.json", read_glue_runs),
    ("glue/*startJobRun-sync-output.json", read_glue_runs),
    ("glue/*.output.txt", read_glue_doc_text),
    ("glue/*.log", read_glue_log),
    ("lambda-logs/*.log", read_lambda_log),
    ("lambda-logs/*.json", read_lambda_payload),
]


def _inputs() -> list[str]:
    files = sorted(str(p.relative_to(SHAPES)) for p in SHAPES.rglob("*") if p.is_file())
    return [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in NOT_INPUTS)]


def _readers(rel: str) -> list[Callable[..., dict]]:
    return [reader for pattern, reader in READERS if fnmatch.fnmatch(rel, pattern)]


def test_every_file_has_one_reader():
    files = _inputs()
    assert len(files) >= 30
    unclaimed = [f for f in files if len(_readers(f)) != 1]
    assert unclaimed == [], "aws-shapes files without exactly one reader in READERS"


@pytest.mark.parametrize("rel", _inputs())
def test_file_through_its_collector(rel, aws, make_settings, engine, now, request):
    [reader] = _readers(rel)
    outcome = reader(SHAPES / rel, engine, make_settings, aws, now)
    assert outcome
    print(f"\nSHAPE {rel} -> {json.dumps(outcome, default=str)}")
