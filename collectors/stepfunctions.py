"""Step Functions -> ``runs`` and ``run_steps``, incrementally, newest first.

Per state machine a ``NewestFirst`` watermark remembers the newest execution start stored and
the executions still running. A pass pages ``ListExecutions`` (newest first) only until it
reaches that mark, re-describes the remembered running executions, and reads
``GetExecutionHistory`` (``history_page_size`` events a request, default 1000) for each
execution that has ended: every attempt of every top-level state is a step (a Task retried
twice is attempts 1-3, each with its error and cause; a Map or Parallel retried as a whole
likewise; states inside Map iterations and Parallel branches are summarised on the Map/Parallel
step: items in, iterations succeeded out, failed rejected). Standard workflows bill per state
transition, retries included: ``cost_usd`` = (states entered + retries) x ``[prices]
sfn_transition``. For a failed execution the state that failed, the error and the cause come
from the history. Event types this code does not know are counted in the pass's details.

Config ``[collectors.stepfunctions]``: ``state_machines = "all" | "configured"`` (default
"all": machines not named by a ``[[pipelines]]`` resource are stored under their own name),
``lookback_days`` (how far back the first pass reads, default 30), ``max_history_pages``
(default 25), ``express_log_pages`` (default 20).

Express workflows have no execution history and ``ListExecutions`` does not list them: their
only record is the execution log the state machine writes to CloudWatch Logs (its
``loggingConfiguration``, level ALL for every execution; ERROR or FATAL log only failures).
Per Express machine a pass calls ``DescribeStateMachine`` once (log group, level, definition
size) and ``FilterLogEvents`` on that group from the machine's watermark (first pass:
``lookback_days``): the records (``id``, ``type``, ``details``, ``previous_event_id``,
``event_timestamp``, ``execution_arn``) of each execution are its history, read by the same
code as a Standard history. An execution is stored once its log shows both its start and its
end (an Express execution lasts at most 5 minutes; the next pass reads again from the oldest
one still open). A machine without logging is counted in the pass's details
(``express_unlogged``), nothing else. Its cost is AWS's Express formula: one request
(``[prices] sfn_express_request``) plus duration rounded up to 100 ms times memory billed in
64 MB steps at ``sfn_express_gb_second`` (the first 1,000 GB-hours tier: an upper bound for
larger volumes). Memory is AWS's published estimate, 50 MB + definition size + execution data
size x Map iterations and Parallel states (the data size is known only when the log includes
execution data; else the estimate is 64 MB, the smallest step).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, RunRow, StepRow
from collectors.incremental import NewestFirst
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Prices, Settings, opt
from pipepulse.vocab import CANCELLED, FAILED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = ["History", "StepFunctionsCollector", "create", "express_cost", "express_memory_mb", "history_from_log",
           "log_group_of",
           "steps_from_history"]

NAME = "stepfunctions"
# Step Functions execution status -> ours
STATUS = {
    "RUNNING": RUNNING,
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
    "TIMED_OUT": TIMED_OUT,
    "ABORTED": CANCELLED,
    "PENDING_REDRIVE": FAILED,
}
ENDED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"}  # executions that will not change


def _utc(ts: datetime | None) -> datetime | None:
    return ts.astimezone(UTC) if ts is not None else None


# ---- the history: every event type of GetExecutionHistory (botocore's HistoryEventType) -----------
# An attempt of a Task begins when the work is scheduled; a retry schedules it again inside the
# same TaskStateEntered. A Map or Parallel attempt begins at MapStateStarted/ParallelStateStarted
# (a Retry on the whole state starts it again). States inside Map iterations and Parallel branches
# are summarised on their outermost Map/Parallel step (they are billed, not stored one by one).
ATTEMPT_START = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
ATTEMPT_OK = {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"}
ATTEMPT_FAILED = {
    "TaskFailed", "TaskStartFailed", "TaskSubmitFailed", "LambdaFunctionFailed", "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed", "ActivityFailed", "ActivityScheduleFailed", "EvaluationFailed",
}
ATTEMPT_TIMED_OUT = {"TaskTimedOut", "LambdaFunctionTimedOut", "ActivityTimedOut"}
ATTEMPT_PROGRESS = {"TaskStarted", "TaskSubmitted", "LambdaFunctionStarted", "ActivityStarted"}  # .sync: TaskSubmitted
STATE_ABORTED = {"TaskStateAborted", "WaitStateAborted", "MapStateAborted", "ParallelStateAborted"}
CONTAINERS = {"Map", "Parallel"}
CONTAINER_START = {"MapStateStarted", "ParallelStateStarted"}
CONTAINER_OK = {"MapStateSucceeded", "ParallelStateSucceeded"}
CONTAINER_FAILED = {"MapStateFailed", "ParallelStateFailed"}
ITERATION = {"MapIterationStarted", "MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"}
MAP_RUN = {"MapRunStarted", "MapRunSucceeded", "MapRunFailed", "MapRunAborted", "MapRunRedriven"}  # distributed Map
EXECUTION_END = {"ExecutionSucceeded": SUCCEEDED, "ExecutionFailed": FAILED, "ExecutionTimedOut": TIMED_OUT,
                 "ExecutionAborted": CANCELLED}
EXECUTION_OTHER = {"ExecutionStarted", "ExecutionRedriven"}
STATE_TYPES = ("Choice", "Fail", "Map", "Parallel", "Pass", "Succeed", "Task", "Wait")
KNOWN_EVENTS = (
    ATTEMPT_START | ATTEMPT_OK | ATTEMPT_FAILED | ATTEMPT_TIMED_OUT | ATTEMPT_PROGRESS | STATE_ABORTED | CONTAINER_START
    | CONTAINER_OK | CONTAINER_FAILED | ITERATION | MAP_RUN | set(EXECUTION_END) | EXECUTION_OTHER
    | {f"{t}StateEntered" for t in STATE_TYPES} | {f"{t}StateExited" for t in STATE_TYPES if t != "Fail"}
)


@dataclass
class History:
    """What one execution's history says: its steps (every attempt), what AWS bills, how it failed."""

    steps: list[StepRow]
    transitions: int  # state transitions as AWS bills Standard workflows (entries + retries)
    retries: int  # attempts beyond the first, over every state
    failure: dict[str, Any]  # state, error, cause, at (empty when nothing failed)
    unknown_events: dict[str, int]  # event types this code does not know (a newer API)


def _details(ev: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in ev.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def _cause_text(cause: Any) -> str | None:
    """The readable part of a cause: a Lambda error document's ``errorMessage``, else the text."""
    if cause is None or cause == "":
        return None
    doc = cause
    if isinstance(cause, str) and cause.lstrip().startswith("{"):
        try:
            doc = json.loads(cause)
        except ValueError:
            return cause
    if isinstance(doc, dict):
        if doc.get("errorMessage"):
            return str(doc["errorMessage"])
        return json.dumps(doc, sort_keys=True)
    return str(doc)


def steps_from_history(run_id: str, events: list[dict[str, Any]], status: str) -> History:
    """Every attempt of every state, the billed transitions and the failure, from history events."""
    attempts: list[dict[str, Any]] = []  # in order; dicts turned into StepRow at the end
    per_stage: dict[str, int] = {}
    transitions = retries = 0
    failure: dict[str, Any] = {}
    unknown: dict[str, int] = {}
    current: dict[str, Any] | None = None  # the top-level state being executed
    stack: list[list[Any]] = []  # open Map/Parallel states, outermost first: [name, attempts started]
    kinds: dict[Any, str] = {}  # event id -> type, to tell a retry from a first attempt inside containers
    last_error: dict[str, Any] = {}

    def names() -> list[str]:
        return [s[0] for s in stack]

    def new_attempt(state: dict[str, Any], ts: datetime | None) -> dict[str, Any]:
        nonlocal retries, transitions
        name = state["name"]
        if state["attempts"]:
            retries += 1
            transitions += 1  # a retry is billed as a transition
            prev = state["attempts"][-1]
            if prev["status"] == RUNNING:
                prev["status"] = FAILED
                prev["ended_at"] = prev["ended_at"] or ts
            prev["next_retry_at"] = ts
        per_stage[name] = per_stage.get(name, 0) + 1
        att = {"stage": name, "attempt": per_stage[name], "started_at": ts, "ended_at": None, "status": RUNNING}
        state["attempts"].append(att)
        attempts.append(att)
        return att

    def end_attempt(state: dict[str, Any] | None, ts: datetime | None, result: str, details: dict[str, Any]) -> None:
        if state is None:
            return
        if not state["attempts"]:
            new_attempt(state, state["entered_at"])
        att = state["attempts"][-1]
        att["status"], att["ended_at"] = result, ts
        if result != SUCCEEDED:
            att["error_type"] = details.get("error") or att.get("error_type")
            att["error_message"] = _cause_text(details.get("cause")) or att.get("error_message")

    for ev in events:
        kind = str(ev.get("type", ""))
        ts = _utc(ev.get("timestamp"))
        det = _details(ev)
        kinds[ev.get("id")] = kind
        if kind not in KNOWN_EVENTS:
            unknown[kind] = unknown.get(kind, 0) + 1
            continue
        if kind.endswith("StateEntered"):
            transitions += 1
            state_type = kind[: -len("StateEntered")]
            name = str(det.get("name", "?"))
            if stack:  # inside a Map iteration or a Parallel branch: summarised on the container
                if current is not None:
                    current["inner_states"] += 1
                if state_type in CONTAINERS:
                    stack.append([name, 0])
                continue
            current = {"name": name, "type": state_type, "entered_at": ts, "attempts": [], "inner_states": 0}
            if state_type in CONTAINERS:
                stack.append([name, 0])
            elif state_type != "Task":
                new_attempt(current, ts)
            continue
        if kind.endswith("StateExited"):
            name = str(det.get("name", "?"))
            if stack and name in names():
                del stack[len(stack) - 1 - names()[::-1].index(name)]
                if stack:
                    continue
            elif stack:
                continue  # an inner state of a branch or iteration
            if current is not None and current["name"] == name:
                if not current["attempts"]:
                    new_attempt(current, current["entered_at"])
                att = current["attempts"][-1]
                if att["status"] == RUNNING:
                    att["status"] = SUCCEEDED
                att["ended_at"] = att["ended_at"] or ts
                current["exited_at"] = ts
            continue
        if kind in ATTEMPT_START:
            if stack:
                # an inner Task's retry (scheduled again right after its failure) is billed too
                if kinds.get(ev.get("previousEventId")) in ATTEMPT_FAILED | ATTEMPT_TIMED_OUT:
                    retries += 1
                    transitions += 1
                continue
            if current is not None:
                new_attempt(current, ts)
            continue
        if kind in ATTEMPT_PROGRESS:
            continue
        if kind in ATTEMPT_OK:
            if not stack and current is not None:
                end_attempt(current, ts, SUCCEEDED, {})
            continue
        if kind in ATTEMPT_FAILED or kind in ATTEMPT_TIMED_OUT:
            last_error = {"error": det.get("error") or ("States.Timeout" if kind in ATTEMPT_TIMED_OUT else None),
                          "cause": det.get("cause"), "at": ts}
            if stack:
                if current is not None:
                    current["inner_error"] = last_error
                continue
            end_attempt(current, ts, TIMED_OUT if kind in ATTEMPT_TIMED_OUT else FAILED, last_error)
            if current is not None:
                failure = {"state": current["name"], **last_error}
            continue
        if kind in CONTAINER_START:
            if not stack:
                continue
            stack[-1][1] += 1
            if len(stack) == 1 and current is not None:
                att = new_attempt(current, ts)
                if kind == "MapStateStarted":  # items in; iterations that succeeded out, failed rejected
                    att.update(records_in=det.get("length"), records_out=0, records_rejected=0)
            elif stack[-1][1] > 1:  # an inner Map/Parallel retried as a whole
                retries += 1
                transitions += 1
            continue
        if kind in ITERATION:
            if len(stack) == 1 and current is not None and current["attempts"]:
                att = current["attempts"][-1]
                if kind == "MapIterationSucceeded":
                    att["records_out"] = (att.get("records_out") or 0) + 1
                elif kind in {"MapIterationFailed", "MapIterationAborted"}:
                    att["records_rejected"] = (att.get("records_rejected") or 0) + 1
            continue
        if kind in MAP_RUN:
            if kind in {"MapRunFailed", "MapRunAborted"} and current is not None:
                last_error = {"error": det.get("error") or ("States.MapRunAborted" if kind == "MapRunAborted" else None),
                              "cause": det.get("cause"), "at": ts}
                current["inner_error"] = last_error
            continue
        if kind in CONTAINER_OK or kind in CONTAINER_FAILED:
            if len(stack) == 1 and current is not None:
                if kind in CONTAINER_OK:
                    end_attempt(current, ts, SUCCEEDED, {})
                else:
                    end_attempt(current, ts, FAILED, current.get("inner_error") or {})
                    failure = {"state": current["name"], **(current.get("inner_error") or {}), "at": ts}
            if kind in CONTAINER_FAILED and len(stack) > 1:
                stack.pop()  # a failed inner Map/Parallel may never exit
            continue
        if kind in STATE_ABORTED:
            if not stack or (len(stack) == 1 and kind in {"MapStateAborted", "ParallelStateAborted"}):
                end_attempt(current, ts, CANCELLED, {"error": "States.Aborted"})
            continue
        if kind in EXECUTION_END:
            final = EXECUTION_END[kind]
            if final == SUCCEEDED:
                failure = {}
                continue
            err = {k: det[k] for k in ("error", "cause") if det.get(k)}
            if not err:
                err = {k: last_error[k] for k in ("error", "cause") if last_error.get(k)}
            if final == CANCELLED:
                err.setdefault("error", "States.Aborted")
            failure = {"state": current["name"] if current else None, **err, "at": ts}
            if current is not None:
                if not current["attempts"] or current["attempts"][-1]["status"] == RUNNING:
                    end_attempt(current, ts, final, err)
                elif current["attempts"][-1]["status"] != SUCCEEDED and not current["attempts"][-1].get("error_type"):
                    current["attempts"][-1].update(error_type=err.get("error"), error_message=_cause_text(err.get("cause")))
            continue
        if kind == "ExecutionRedriven":
            stack.clear()  # a redrive starts again from the failed state
            continue
    final_status = STATUS.get(status, FAILED)
    for att in attempts:
        if att["status"] == RUNNING and final_status != RUNNING:
            att["status"] = final_status
            att["ended_at"] = att["ended_at"] or failure.get("at")
    rows = [StepRow(run_id=run_id, **att) for att in attempts]
    return History(steps=rows, transitions=transitions, retries=retries, failure=failure, unknown_events=unknown)


# ---- Express workflows: execution log records, priced by duration and memory ---------------------
EXPRESS_BASE_MB = 50  # AWS's estimate: 50 MB + definition size + data size x Map/Parallel steps
EXPRESS_MEMORY_STEP_MB = 64  # memory is billed in 64 MB chunks
EXPRESS_DURATION_STEP_MS = 100  # duration is rounded up to the nearest 100 ms
OVERLAP = timedelta(minutes=5)  # CloudWatch may store an event a little after its timestamp


def express_memory_mb(definition_bytes: int, data_bytes: int = 0, fan_out: int = 0) -> float:
    """AWS's published memory estimate of an Express execution, in MB (1 MB = 1,000 KB as in AWS's
    example: 50 MB + 50 KB definition + 400 Map steps x 32 KB = 62.85 MB)."""
    return EXPRESS_BASE_MB + (definition_bytes + data_bytes * fan_out) / 1_000_000


def express_cost(duration_ms: float, memory_mb: float, prices: Prices) -> float:
    """One Express execution at list price: a request, plus duration (rounded up to 100 ms) x
    memory (rounded up to 64 MB) at the first-tier GB-second price."""
    billed_ms = math.ceil(max(duration_ms, 0) / EXPRESS_DURATION_STEP_MS) * EXPRESS_DURATION_STEP_MS
    billed_mb = max(1, math.ceil(memory_mb / EXPRESS_MEMORY_STEP_MB)) * EXPRESS_MEMORY_STEP_MB
    return prices.sfn_express_request + billed_ms / 1000 * billed_mb / 1024 * prices.sfn_express_gb_second


def _epoch_ms(value: Any) -> datetime | None:
    text = str(value) if isinstance(value, (str, int)) else ""
    return datetime.fromtimestamp(int(text) / 1000, UTC) if text.isdigit() else None


def history_from_log(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Execution log records (``id``, ``type``, ``details``, ``previous_event_id``,
    ``event_timestamp``) as GetExecutionHistory events, in event id order."""
    events = []
    for rec in records:
        kind = str(rec.get("type", ""))
        details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
        ev: dict[str, Any] = {"id": _int(rec.get("id")), "previousEventId": _int(rec.get("previous_event_id")),
                              "type": kind, "timestamp": _epoch_ms(rec.get("event_timestamp"))}
        if details:
            ev[f"{kind[:1].lower()}{kind[1:]}EventDetails"] = details
        events.append(ev)
    return sorted(events, key=lambda e: (e["id"] is None, e["id"] or 0))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def log_group_of(logging: dict[str, Any]) -> str | None:
    """The log group name of a ``loggingConfiguration`` (its ARN ends ``:log-group:<name>:*``)."""
    for dest in logging.get("destinations") or []:
        arn = str((dest.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn") or "")
        if ":log-group:" in arn:
            name = arn.split(":log-group:", 1)[1]
            return name[:-2] if name.endswith(":*") else name
    return None


class StepFunctionsCollector(Collector):
    name = NAME
    scope = "regional"  # every account x region (collectors/accounts.py)

    def __init__(self, settings: Settings, *, only_configured: bool, lookback: timedelta, max_history_pages: int,
                 history_page_size: int = 1000, express_log_pages: int = 20) -> None:
        self.settings = settings
        self.express_log_pages = express_log_pages
        self.only_configured = only_configured
        self.lookback = lookback
        self.max_history_pages = max_history_pages
        self.history_page_size = history_page_size
        self.pipelines = {p.resource: p.name for p in settings.pipelines if p.source == NAME and p.resource}

    def collect(self, ctx: Context) -> Batch:
        sfn = ctx.client("stepfunctions")
        batch = Batch()
        machines = []
        for page in sfn.get_paginator("list_state_machines").paginate():
            machines.extend(page.get("stateMachines", []))
        stats = {"machines": 0, "executions": 0, "histories": 0}
        for machine in machines:
            arn = machine["stateMachineArn"]
            pipeline = self.pipelines.get(arn)
            if pipeline is None:
                if self.only_configured:
                    continue
                pipeline = machine["name"]
            stats["machines"] += 1
            if machine.get("type") == "EXPRESS":
                self._express(ctx, sfn, batch, machine, pipeline, stats)
                continue
            key = f"sm:{arn}"
            mark = NewestFirst.load(ctx.watermark(key))
            before = mark.dump()
            self._machine(ctx, sfn, batch, arn, pipeline, mark, stats)
            if mark.dump() != before:
                batch.watermarks[key] = mark.dump()
        batch.details.update(stats)
        return batch

    def _machine(self, ctx: Context, sfn: Any, batch: Batch, arn: str, pipeline: str, mark: NewestFirst, stats: dict) -> None:
        oldest = ctx.now - self.lookback
        fresh: list[dict[str, Any]] = []
        token = None
        done = False
        while not done:
            kwargs: dict[str, Any] = {"stateMachineArn": arn, "maxResults": 100}
            if token:
                kwargs["nextToken"] = token
            page = sfn.list_executions(**kwargs)
            for ex in page.get("executions", []):
                started = _utc(ex["startDate"])
                if mark.reached(started) or (mark.start is None and started < oldest):
                    done = True
                    break
                if mark.is_new(ex["executionArn"], started):
                    fresh.append(ex)
            token = page.get("nextToken")
            done = done or not token
        seen = {ex["executionArn"] for ex in fresh}
        # executions stored while running: look again until they end
        for ex_arn in sorted(mark.running - seen):
            try:
                ex = sfn.describe_execution(executionArn=ex_arn)
            except CollectorError as exc:
                if "ExecutionDoesNotExist" in str(exc):
                    mark.running.discard(ex_arn)
                    continue
                raise
            if ex["status"] in ENDED:
                fresh.append(ex)
        for ex in sorted(fresh, key=lambda e: _utc(e["startDate"])):
            self._execution(ctx, sfn, batch, ex, pipeline, stats)
            mark.advance(ex["executionArn"], _utc(ex["startDate"]), ended=ex["status"] in ENDED)

    def _execution(self, ctx: Context, sfn: Any, batch: Batch, ex: dict[str, Any], pipeline: str, stats: dict) -> None:
        ex_arn = ex["executionArn"]
        run_id = f"stepfunctions:{ex_arn}"
        status = ex["status"]
        if status not in STATUS:
            raise CollectorError(NAME, f"execution {ex_arn}: unexpected status {status!r}")
        stats["executions"] += 1
        history = History(steps=[], transitions=0, retries=0, failure={}, unknown_events={})
        if status in ENDED:
            events = self._history(sfn, ex_arn, stats)
            stats["histories"] += 1
            history = steps_from_history(run_id, events, status)
            for kind, n in history.unknown_events.items():
                stats.setdefault("unknown_events", {})[kind] = stats.get("unknown_events", {}).get(kind, 0) + n
        failure = history.failure
        parts = ex_arn.split(":")
        error = ex.get("error") or failure.get("error")
        cause = _cause_text(ex.get("cause") or failure.get("cause"))
        message = cause
        failed = STATUS[status] != SUCCEEDED
        if failure.get("state") and failed:
            message = f"state {failure['state']}: {cause}" if cause else f"state {failure['state']} failed"
        batch.runs.append(
            RunRow(
                run_id=run_id,
                pipeline=pipeline,
                source=NAME,
                status=STATUS[status],
                trigger="schedule",
                started_at=_utc(ex["startDate"]),
                ended_at=_utc(ex.get("stopDate")),
                error_type=error if failed else None,
                error_message=message if failed else None,
                correlation_id=ex.get("name"),
                retries=history.retries,
                cost_usd=history.transitions * self.settings.prices.sfn_transition if status in ENDED else None,
                account=parts[4] if len(parts) > 4 else "",
                region=parts[3] if len(parts) > 3 else "",
            ),
        )
        batch.steps.extend(history.steps)

    def _express(self, ctx: Context, sfn: Any, batch: Batch, machine: dict[str, Any], pipeline: str, stats: dict) -> None:
        """An Express machine's executions from its execution log (see the module's docstring)."""
        arn = machine["stateMachineArn"]
        described = sfn.describe_state_machine(stateMachineArn=arn)
        logging = described.get("loggingConfiguration") or {}
        group = log_group_of(logging)
        express = stats.setdefault("express", {"machines": 0, "executions": 0, "open": 0, "log_events": 0})
        express["machines"] += 1
        if group is None or str(logging.get("level", "OFF")).upper() == "OFF":
            stats.setdefault("express_unlogged", []).append(machine["name"])
            return
        if str(logging.get("level")).upper() != "ALL":
            # ERROR/FATAL: only failures are logged, without ExecutionStarted: nothing to store a run from
            stats.setdefault("express_partial_logging", {})[machine["name"]] = logging.get("level")
        key = f"express:{arn}"
        mark = ctx.watermark(key)
        start = datetime.fromisoformat(mark) - OVERLAP if mark else ctx.now - self.lookback
        logs = ctx.client("logs")
        per_execution: dict[str, list[dict[str, Any]]] = {}
        token = None
        for _ in range(self.express_log_pages):
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int(start.timestamp() * 1000),
                                      "endTime": int(ctx.now.timestamp() * 1000), "limit": 1000}
            if token:
                kwargs["nextToken"] = token
            try:
                page = logs.filter_log_events(**kwargs)
            except CollectorError as exc:
                if "ResourceNotFoundException" not in str(exc):
                    raise
                stats.setdefault("express_missing_groups", []).append(group)
                return
            for event in page.get("events", []):
                express["log_events"] += 1
                try:
                    doc = json.loads(event.get("message", ""))
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("execution_arn") and doc.get("type"):
                    per_execution.setdefault(str(doc["execution_arn"]), []).append(doc)
            token = page.get("nextToken")
            if not token:
                break
        else:
            stats.setdefault("express_logs_cut", []).append(group)
        definition_bytes = len(str(described.get("definition", "")).encode())
        open_since: datetime | None = None
        newest: datetime | None = None
        for ex_arn, records in sorted(per_execution.items()):
            events = history_from_log(records)
            started = next((e["timestamp"] for e in events if e["type"] == "ExecutionStarted"), None)
            ended = next((e for e in events if e["type"] in EXECUTION_END), None)
            for e in events:
                newest = e["timestamp"] if newest is None or (e["timestamp"] and e["timestamp"] > newest) else newest
            if started is None:
                continue  # its start is before the window (stored by an earlier pass) or not logged
            if ended is None:
                express["open"] += 1
                open_since = started if open_since is None or started < open_since else open_since
                continue
            self._express_run(batch, ex_arn, events, started, ended, pipeline, definition_bytes)
            express["executions"] += 1
        new_mark = open_since or newest
        if new_mark is not None and (mark is None or new_mark.isoformat() != mark):
            batch.watermarks[key] = new_mark.isoformat()

    def _express_run(self, batch: Batch, ex_arn: str, events: list[dict[str, Any]], started: datetime,
                     ended: dict[str, Any], pipeline: str, definition_bytes: int) -> None:
        run_id = f"stepfunctions:{ex_arn}"
        final = EXECUTION_END[ended["type"]]
        status = {SUCCEEDED: "SUCCEEDED", FAILED: "FAILED", TIMED_OUT: "TIMED_OUT", CANCELLED: "ABORTED"}[final]
        history = steps_from_history(run_id, events, status)
        start_details = _details(next(e for e in events if e["type"] == "ExecutionStarted"))
        data = start_details.get("input")
        data_bytes = len(data.encode()) if isinstance(data, str) else 0
        fan_out = sum(1 for e in events if e["type"] in {"MapIterationStarted", "ParallelStateStarted"})
        memory = express_memory_mb(definition_bytes, data_bytes, fan_out)
        duration_ms = (ended["timestamp"] - started).total_seconds() * 1000 if ended["timestamp"] else 0.0
        failure = history.failure
        failed = final != SUCCEEDED
        err = _details(ended)
        cause = _cause_text(err.get("cause") or failure.get("cause"))
        message = cause
        if failure.get("state") and failed:
            message = f"state {failure['state']}: {cause}" if cause else f"state {failure['state']} failed"
        parts = ex_arn.split(":")
        batch.runs.append(RunRow(
            run_id=run_id, pipeline=pipeline, source=NAME, status=final, trigger="event", started_at=started,
            ended_at=ended["timestamp"], error_type=(err.get("error") or failure.get("error")) if failed else None,
            error_message=message if failed else None, correlation_id=parts[7] if len(parts) > 7 else None,
            retries=history.retries, cost_usd=express_cost(duration_ms, memory, self.settings.prices),
            account=parts[4] if len(parts) > 4 else "", region=parts[3] if len(parts) > 3 else "",
        ))
        batch.steps.extend(history.steps)

    def _history(self, sfn: Any, ex_arn: str, stats: dict) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token = None
        for _ in range(self.max_history_pages):
            kwargs: dict[str, Any] = {"executionArn": ex_arn, "maxResults": self.history_page_size}
            if token:
                kwargs["nextToken"] = token
            page = sfn.get_execution_history(**kwargs)
            events.extend(page.get("events", []))
            token = page.get("nextToken")
            if not token:
                break
        else:
            # more than max_history_pages x 1000 events: the steps stop there (say so in the pass)
            stats.setdefault("histories_cut", []).append(ex_arn)
        return events


def create(settings: Settings) -> StepFunctionsCollector:
    label, where = settings.config_label, "collectors.stepfunctions"
    own = settings.section("collectors").get("stepfunctions", {}) or {}
    which = opt(own, "state_machines", str, label, where, default="all")
    if which not in {"all", "configured"}:
        raise ConfigError(f"{label}: [{where}] state_machines: expected \"all\" or \"configured\", got {which!r}")
    days = opt(own, "lookback_days", int, label, where, default=30)
    pages = opt(own, "max_history_pages", int, label, where, default=25)
    size = opt(own, "history_page_size", int, label, where, default=1000)
    if not 1 <= size <= 1000:
        raise ConfigError(f"{label}: [{where}] history_page_size: expected 1 to 1000 (GetExecutionHistory's maxResults), got {size}")
    express_pages = opt(own, "express_log_pages", int, label, where, default=20)
    if express_pages <= 0:
        raise ConfigError(f"{label}: [{where}] express_log_pages: expected a positive number, got {express_pages}")
    return StepFunctionsCollector(settings, only_configured=which == "configured", lookback=timedelta(days=days),
                                  max_history_pages=pages, history_page_size=size, express_log_pages=express_pages)
