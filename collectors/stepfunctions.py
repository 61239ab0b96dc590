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
(default 25). Express workflows have no execution history; they are skipped (CloudWatch Logs
is their only record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, RunRow, StepRow
from collectors.incremental import NewestFirst
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt
from pipepulse.vocab import CANCELLED, FAILED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = ["History", "StepFunctionsCollector", "create", "steps_from_history"]

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


class StepFunctionsCollector(Collector):
    name = NAME
    scope = "regional"  # every account x region (collectors/accounts.py)

    def __init__(self, settings: Settings, *, only_configured: bool, lookback: timedelta, max_history_pages: int,
                 history_page_size: int = 1000) -> None:
        self.settings = settings
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
            if machine.get("type") == "EXPRESS":
                continue
            pipeline = self.pipelines.get(arn)
            if pipeline is None:
                if self.only_configured:
                    continue
                pipeline = machine["name"]
            stats["machines"] += 1
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
    return StepFunctionsCollector(settings, only_configured=which == "configured", lookback=timedelta(days=days),
                                  max_history_pages=pages, history_page_size=size)
