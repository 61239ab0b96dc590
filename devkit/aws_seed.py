"""Demo data for the AWS run sources: Step Functions executions and Glue job runs on local AWS.

``seed_aws_sources(settings, now=...)`` creates, on the configured (moto) endpoint:

- the state machine ``customer-etl`` (ARN as in ``examples/demo.toml``) run for real in moto's
  execute mode: Pass, Wait, Choice and Fail states, so some executions succeed and some fail
  with an error and a cause that the collector reads from the execution history;
- the Glue job ``nightly-compaction`` with one run per night at 02:00 UTC for every day of the
  demo's history whose run is over by ``now`` (the last ``GLUE_NIGHTS`` nights without a
  history); the bill charges its ``glue_nightly`` line on those days only (``glue_nights``), so
  that its runs' estimates add up to that line over any window. moto's
  runs always succeed, carry the wall-clock start and report ``ExecutionTime`` 123 s whatever
  they did; the demo runs moto in this process, so it sets each run's start, end,
  billed seconds and (for a few) FAILED or TIMEOUT state on moto's backend object, which is the
  only way to reach those states (see ../shared/notes/aws-emulation.md). The runs match the
  demo's bill: the bill (pipeline/focus.py, its ``glue_nightly`` line) meters the job at 5.0
  DPU-hours a day growing 0.2% a day, so each night's run is that many DPU-hours on
  ``GLUE_WORKERS`` G.1X workers (about 30 to 36 minutes), and a run's estimate lands within a
  few percent of the day's bill (the bill has its own metering noise). One night fails out of
  memory part-way (``GLUE_OOM_NIGHT`` days ago), one runs into the job's timeout
  (``GLUE_TIMEOUT_NIGHT`` days ago).

Step Functions executions run at once in moto, all at the wall-clock time of the build with no
duration. When moto runs in this process (the demo), the seed then moves them to the last
``SFN_EXECUTIONS`` slots of the schedule the config gives the pipeline watching ``customer-etl``
(``examples/demo.toml``: every 6 hours; one every ``SFN_EVERY`` before ``now`` when no pipeline
has a schedule), a few seconds after each slot, and gives each state a duration
(``SFN_STATE_SECONDS``), by rewriting the start and stop dates and the history events'
timestamps on moto's backend objects, as it does for Glue. Over a moto server in another process
they keep moto's times.

The demo's bill charges those executions and nothing else for Step Functions: ``seed_aws_sources``
returns their state transitions by day, counted from their histories by the collector's own
``steps_from_history``, and the demo hands them to the backfill that writes the bill. Change the
definition, the inputs or the schedule and the bill follows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import boto3
import requests
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.glue.models import glue_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from collectors.stepfunctions import steps_from_history
from pipepulse.cron import CronSchedule
from pipepulse.settings import Settings

__all__ = ["CUSTOMER_ETL", "GLUE_JOB", "SFN_EXECUTIONS", "SeededAws", "seed_aws_sources"]

log = logging.getLogger(__name__)
ACCOUNT = "123456789012"  # moto's default account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipepulse-demo"
GLUE_JOB = "nightly-compaction"
GLUE_NIGHTS = 14
GLUE_WORKERS = 10  # G.1X: 1 DPU each
GLUE_TIMEOUT_MINUTES = 45
GLUE_STARTUP = timedelta(seconds=40)  # provisioning before billing starts: wall clock > ExecutionTime
SFN_EXECUTIONS = 12
SFN_EVERY = timedelta(hours=6)  # without a configured schedule: one every six hours, the newest before ``now``
# how long each state of CUSTOMER_ETL takes in the demo (seconds); a state not listed: 1 s
SFN_STATE_SECONDS = {"Extract": 95, "WaitForExport": 240, "Validate": 2, "Transform": 310, "Load": 140}
CUSTOMER_ETL = {
    "Comment": "Customer ETL: extract, wait for the export, validate, transform, load",
    "StartAt": "Extract",
    "States": {
        "Extract": {"Type": "Pass", "Result": {"rows": 1200}, "ResultPath": "$.extract", "Next": "WaitForExport"},
        "WaitForExport": {"Type": "Wait", "Seconds": 0, "Next": "Validate"},
        "Validate": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.bad_rows", "NumericGreaterThan": 0, "Next": "RejectBatch"},
                {"Variable": "$.schema_drift", "BooleanEquals": True, "Next": "SchemaDrift"},
            ],
            "Default": "Transform",
        },
        "RejectBatch": {"Type": "Fail", "Error": "DataQualityError", "Cause": "rows failed validation: null customer_id"},
        "SchemaDrift": {"Type": "Fail", "Error": "SchemaMismatch", "Cause": "column 'segment' missing from the export"},
        "Transform": {"Type": "Pass", "Next": "Load"},
        "Load": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def _endpoint(client) -> str:
    return client.meta.endpoint_url.rstrip("/")


@dataclass
class SeededAws:
    executions: int
    glue_runs: int
    # (day, pipeline tag, state machine ARN) -> state transitions the executions started that
    # day bill (Standard), as the collector counts them from their histories
    sfn_transitions: dict[tuple[date, str, str], int] = field(default_factory=dict)
    # the days the Glue job ran: the only days the bill charges it (tonight's run, if not over
    # by ``now``, is not one of them)
    glue_nights: list[date] = field(default_factory=list)

    def __str__(self) -> str:
        n = sum(self.sfn_transitions.values())
        return f"{self.executions} Step Functions executions, {self.glue_runs} Glue job runs ({n} state transitions to bill)"


def seed_aws_sources(settings: Settings, *, now: datetime, history_days: int | None = None) -> SeededAws:
    """Create the demo's state machine with executions and Glue job with nightly runs; says how many
    (``str``), what the executions bill (``sfn_transitions``) and which days the job ran
    (``glue_nights``).
    ``history_days``: how far back the demo's bill starts (its Glue line grows from there)."""
    sfn = boto3.client("stepfunctions", region_name=settings.aws_region)
    glue = boto3.client("glue", region_name=settings.aws_region)
    arn, started = _seed_step_functions(sfn, settings, now)
    nights = _seed_glue(glue, settings, now, history_days=history_days)
    seeded = SeededAws(len(started), len(nights), _billed_transitions(sfn, settings, arn, started),
                       [night.date() for night in nights])
    log.info("seeded AWS sources", extra={"executions": seeded.executions, "glue_runs": seeded.glue_runs,
                                           "state_transitions": sum(seeded.sfn_transitions.values())})
    return seeded


def _pipeline_of(settings: Settings, arn: str):
    """The configured pipeline that watches the state machine ``arn``, or None."""
    return next((p for p in settings.pipelines if p.source == "stepfunctions" and p.resource == arn), None)


def _sfn_starts(settings: Settings, arn: str, now: datetime, n: int) -> list[datetime]:
    """When the demo's ``n`` executions start, oldest first: a few seconds after each of the last
    ``n`` slots of the pipeline's schedule that leave a whole run before ``now``."""
    run = timedelta(seconds=sum(SFN_STATE_SECONDS.values()) + 60)
    pipeline = _pipeline_of(settings, arn)
    if pipeline is None or not pipeline.schedule:
        slots = [now - (n - i) * SFN_EVERY for i in range(n)]
    else:
        cron = CronSchedule(pipeline.schedule)
        slot = cron.previous_at_or_before(now - run)
        slots = []
        while len(slots) < n:
            slots.append(slot)
            slot = cron.previous_at_or_before(slot - timedelta(seconds=1))
        slots.reverse()
    return [slot + timedelta(seconds=2 + 11 * (i % 3)) for i, slot in enumerate(slots)]


def _billed_transitions(sfn, settings: Settings, arn: str, started: list[str]) -> dict[tuple[date, str, str], int]:
    """State transitions of ``started`` executions by the day each started (their histories,
    counted by the Step Functions collector's ``steps_from_history``)."""
    pipeline = _pipeline_of(settings, arn)
    tag = pipeline.name if pipeline is not None else ""
    out: dict[tuple[date, str, str], int] = {}
    for execution_arn in started:
        ex = sfn.describe_execution(executionArn=execution_arn)
        events: list[dict] = []
        kwargs = {"executionArn": execution_arn}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page.get("events", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        transitions = steps_from_history(execution_arn, events, ex["status"]).transitions
        key = (ex["startDate"].astimezone(UTC).date(), tag, arn)
        out[key] = out.get(key, 0) + transitions
    return out


def _seed_step_functions(sfn, settings: Settings, now: datetime) -> tuple[str, list[str]]:
    # Real execution must be on before the state machine is created (moto keeps two stores).
    requests.post(f"{_endpoint(sfn)}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                  timeout=30).raise_for_status()
    try:
        arn = sfn.create_state_machine(name="customer-etl", definition=json.dumps(CUSTOMER_ETL), roleArn=ROLE)["stateMachineArn"]
    except sfn.exceptions.StateMachineAlreadyExists:
        arn = f"arn:aws:states:{sfn.meta.region_name}:{ACCOUNT}:stateMachine:customer-etl"
    started = []
    for i in range(SFN_EXECUTIONS):
        payload = {"batch": i, "bad_rows": 7 if i % 5 == 3 else 0, "schema_drift": i % 7 == 6}
        name = f"demo-{now:%Y%m%dT%H%M}-{i:02d}"
        try:
            started.append(sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"])
        except sfn.exceptions.ExecutionAlreadyExists:
            continue
    deadline = time.monotonic() + 30
    while started and time.monotonic() < deadline:
        if all(sfn.describe_execution(executionArn=a)["status"] != "RUNNING" for a in started):
            break
        time.sleep(0.05)
    executions = _moto_executions(sfn.meta.region_name)
    if executions is None:
        log.warning("moto is not in this process: Step Functions executions keep moto's times (no durations)")
        return arn, started
    for execution_arn, start in zip(started, _sfn_starts(settings, arn, now, len(started)), strict=True):
        if execution_arn in executions:
            _backdate(executions[execution_arn], start)
    return arn, started


def _moto_executions(region: str) -> dict | None:
    """moto's (execute mode) execution objects by ARN when moto runs in this process, else None."""
    try:
        backend = stepfunctions_parser_backends[ACCOUNT][region]
        found = {e.exec_arn: e for sm in backend.state_machines for e in sm.executions}
    except (KeyError, AttributeError):
        return None
    return found or None


def _backdate(execution, start: datetime) -> None:
    """Move a finished moto execution to ``start``: each history event at the time its state would
    have reached it (a state's exit comes ``SFN_STATE_SECONDS`` after its entry), the execution's
    stop date at its last event."""
    t = start
    env = execution.exec_worker.env
    # the event manager hands out deep copies; its own list is the one GetExecutionHistory reads
    for event in env.event_manager._history_event_list:
        if event["type"].endswith("StateExited"):
            name = event.get("stateExitedEventDetails", {}).get("name", "")
            t += timedelta(seconds=SFN_STATE_SECONDS.get(name, 1))
        elif event["type"] in ("ExecutionFailed", "ExecutionSucceeded") or event["type"].endswith("StateEntered"):
            t += timedelta(milliseconds=20)
        event["timestamp"] = iso_8601_datetime_with_milliseconds(t.replace(tzinfo=None))
    execution.start_date = start
    execution.stop_date = t


def _billed_dpu_hours(day_index: int) -> float:
    """DPU-hours the demo's bill meters for ``glue_nightly`` on day ``day_index`` of its history
    (pipeline/focus.py: base quantity x (1 + daily growth x day), before the bill's own noise)."""
    from pipeline.focus import _BASE

    qty, growth = next((row[6], row[8]) for row in _BASE if row[10] == "glue_nightly")
    return float(qty) * (1 + float(growth) * day_index)


def _glue_nights(now: datetime, history_days: int | None) -> list[datetime]:
    """When the demo's nightly runs start (02:00 UTC), oldest first: one for every day of the
    bill's history (``history_days`` before ``now``, through today: the days its ``glue_nightly``
    line covers), or the last ``GLUE_NIGHTS`` nights without a history; a night whose longest run
    (the job's timeout) would not be over by ``now`` is left out."""
    days = history_days if history_days else GLUE_NIGHTS
    first = (now - timedelta(days=days)).replace(hour=2, minute=0, second=0, microsecond=0)
    nights = [first + timedelta(days=i) for i in range(days + 1)]
    return [n for n in nights if n + timedelta(minutes=GLUE_TIMEOUT_MINUTES) <= now]


# nights (days before ``now``'s date) whose run does not succeed: out of memory part-way, and
# stuck until the job's timeout
GLUE_OOM_NIGHT = 9
GLUE_TIMEOUT_NIGHT = 3


def _seed_glue(glue, settings: Settings, now: datetime, *, history_days: int | None = None) -> list[datetime]:
    """Create the Glue job and its nightly runs; returns when the runs started."""
    nights = _glue_nights(now, history_days)
    try:
        glue.create_job(
            Name=GLUE_JOB,
            Role=ROLE,
            Command={"Name": "glueetl", "ScriptLocation": "s3://pipepulse-demo-scripts/compaction.py", "PythonVersion": "3"},
            GlueVersion="4.0",
            WorkerType="G.1X",
            NumberOfWorkers=GLUE_WORKERS,
            ExecutionProperty={"MaxConcurrentRuns": len(nights) + 1},
            Timeout=GLUE_TIMEOUT_MINUTES,
            Tags={"pipeline": "glue_nightly"},
        )
    except glue.exceptions.AlreadyExistsException:
        pass
    ids = [glue.start_job_run(JobName=GLUE_JOB, WorkerType="G.1X", NumberOfWorkers=GLUE_WORKERS)["JobRunId"]
           for _ in nights]
    backend_runs = _moto_job_runs(settings.aws_region)
    if backend_runs is None:
        log.warning("moto is not in this process: Glue runs keep moto's times and states")
        return nights
    history_start = (now - timedelta(days=history_days if history_days else GLUE_NIGHTS)).date()
    for start, run_id in zip(nights, ids, strict=True):
        run = backend_runs[run_id]
        # the night's billed DPU-hours on GLUE_WORKERS workers; two nights fail: out of memory
        # two fifths of the way through, then stuck until the job's timeout
        seconds = round(_billed_dpu_hours((start.date() - history_start).days) * 3600 / GLUE_WORKERS)
        status = "SUCCEEDED"
        ago = (now.date() - start.date()).days
        if ago == GLUE_OOM_NIGHT:
            status, seconds = "FAILED", round(seconds * 0.4)
        elif ago == GLUE_TIMEOUT_NIGHT:
            status, seconds = "TIMEOUT", GLUE_TIMEOUT_MINUTES * 60 - int(GLUE_STARTUP.total_seconds())
        run.started_on = run.modified_on = start.replace(tzinfo=None)
        run.completed_on = (start + GLUE_STARTUP + timedelta(seconds=seconds)).replace(tzinfo=None)
        run.status = status
        _set_execution_time(run, seconds)
    return nights


def _set_execution_time(run, seconds: int) -> None:
    """moto answers ``ExecutionTime`` 123 for every run; this run reports ``seconds`` (Glue's
    billed running time) instead."""
    answer = type(run).as_dict
    run.as_dict = lambda: {**answer(run), "ExecutionTime": seconds}


def _moto_job_runs(region: str):
    """moto's job-run objects by id when moto runs in this process, else None."""
    job = glue_backends[ACCOUNT][region].jobs.get(GLUE_JOB)
    if job is None:
        return None
    return {r.job_run_id: r for r in job.job_runs}


# The reference pipeline's two Lambda functions as deploy/cloudformation/reference-pipeline.yaml
# sizes them (1024 and 2048 MB) and splits the stages between them; the demo's invocations use far
# less memory, so right-sizing has something to say. (function, memory size MB, max memory used
# range MB, the stages it runs)
DEMO_LAMBDAS = (("pipepulse-orders-ingest", 1024, (148, 212), ("ingest", "validate", "quarantine")),
                ("pipepulse-orders-transform", 2048, (301, 455), ("transform", "load")))
LAMBDA_PIPELINE = "orders"
LAMBDA_DAYS = 12  # CloudWatch refuses events older than 14 days


def _lambda_events(request_id: str, start: datetime, seconds: float, memory: int, used: int, init_ms: float | None) -> list[dict]:
    """START, END and REPORT of one invocation, as the Lambda platform writes them (TEXT format)."""
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    end = start + timedelta(seconds=seconds)
    duration = round(seconds * 1000, 2)
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(-(-duration // 1))} ms\t"
              f"Memory Size: {memory} MB\tMax Memory Used: {used} MB\t")
    if init_ms is not None:
        report += f"Init Duration: {init_ms:.2f} ms\t"
    return [{"timestamp": ms(start), "message": f"START RequestId: {request_id} Version: $LATEST\n"},
            {"timestamp": ms(end), "message": f"END RequestId: {request_id}\n"},
            {"timestamp": ms(end), "message": report + "\n"}]


def seed_lambda_reports(settings: Settings, *, now: datetime) -> int:
    """REPORT lines of the reference pipeline's Lambdas for the last ``LAMBDA_DAYS`` days of
    ``orders`` runs (from the ledger): per run, one invocation of each function that ran a stage,
    from the start of its first stage to the end of its last (as the run detail shows them)."""
    import random
    import uuid

    from pipeline.config import pipeline_section
    from pipeline.ledger import Ledger

    rng = random.Random(17)
    wall = datetime.now(now.tzinfo)
    oldest = max(now, wall) - timedelta(days=LAMBDA_DAYS)
    with Ledger(pipeline_section(settings).ledger_path) as ledger:
        runs = [r for r in ledger.runs(pipeline=LAMBDA_PIPELINE) if r.get("started_at") and r.get("ended_at")]
        runs = [r for r in runs if datetime.fromisoformat(str(r["started_at"])) >= oldest
                and datetime.fromisoformat(str(r["ended_at"])) <= wall]
        steps = {r["run_id"]: [s for s in ledger.steps(run_id=r["run_id"]) if s.get("started_at") and s.get("ended_at")]
                 for r in runs}
    logs = boto3.client("logs", region_name=settings.aws_region)
    written = 0
    for function, memory, (low, high), stages in DEMO_LAMBDAS:
        group = f"/aws/lambda/{function}"
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        by_day: dict[str, list[dict]] = {}
        last_start: datetime | None = None
        for run in runs:
            ran = [s for s in steps[run["run_id"]] if s["stage"] in stages]
            if not ran:  # the run ended before this function's stages
                continue
            started = min(datetime.fromisoformat(str(s["started_at"])) for s in ran)
            ended = max(datetime.fromisoformat(str(s["ended_at"])) for s in ran)
            seconds = max(0.1, min(900.0, (ended - started).total_seconds()))
            # a cold start after more than 45 idle minutes, as Lambda recycles idle environments
            cold = last_start is None or (started - last_start) > timedelta(minutes=45)
            init_ms = round(rng.uniform(380, 720), 2) if cold else None
            events = _lambda_events(str(uuid.UUID(int=rng.getrandbits(128))), started, seconds,
                                    memory, rng.randint(low, high), init_ms)
            by_day.setdefault(f"{started:%Y/%m/%d}", []).extend(events)
            last_start = started
        for day, events in sorted(by_day.items()):
            stream = f"{day}/[$LATEST]{uuid.UUID(int=rng.getrandbits(128)).hex}"
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            events.sort(key=lambda e: e["timestamp"])
            for i in range(0, len(events), 5000):  # one PutLogEvents: one day, at most 10,000 events
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + 5000])
            written += len(events) // 3
    log.info("seeded Lambda REPORT lines", extra={"invocations": written})
    return written
