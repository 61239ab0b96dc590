"""Step Functions -> ``runs`` and ``run_steps``, incrementally, newest first.

Per state machine a ``NewestFirst`` watermark remembers the newest execution start stored and
the executions still running. A pass pages ``ListExecutions`` (newest first) only until it
reaches that mark, re-describes the remembered running executions, and reads
``GetExecutionHistory`` for each execution that has ended: every ``*StateEntered`` event is a
step (attempt = how often that state was entered) and a state transition (Standard workflows
bill per transition: ``cost_usd`` = transitions x ``[prices] sfn_transition``); for a failed
execution the state that failed, the error and the cause come from the history.

Config ``[collectors.stepfunctions]``: ``state_machines = "all" | "configured"`` (default
"all": machines not named by a ``[[pipelines]]`` resource are stored under their own name),
``lookback_days`` (how far back the first pass reads, default 30), ``max_history_pages``
(default 25). Express workflows have no execution history; they are skipped (CloudWatch Logs
is their only record).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, RunRow, StepRow
from collectors.incremental import NewestFirst
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt
from pipepulse.vocab import CANCELLED, FAILED, FAILURES, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = ["StepFunctionsCollector", "create", "steps_from_history"]

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


def steps_from_history(run_id: str, events: list[dict[str, Any]], status: str) -> tuple[list[StepRow], int, dict[str, Any]]:
    """Steps, state transitions and failure details (state, error, cause) from history events."""
    steps: list[dict[str, Any]] = []
    open_by_name: dict[str, dict[str, Any]] = {}
    entries: dict[str, int] = {}
    transitions = 0
    failure: dict[str, Any] = {}
    last_entered: str | None = None
    for ev in events:
        kind = ev.get("type", "")
        ts = _utc(ev.get("timestamp"))
        if kind.endswith("StateEntered"):
            name = ev["stateEnteredEventDetails"]["name"]
            entries[name] = entries.get(name, 0) + 1
            step = {"stage": name, "attempt": entries[name], "started_at": ts, "ended_at": None, "status": RUNNING}
            steps.append(step)
            open_by_name[name] = step
            transitions += 1
            last_entered = name
        elif kind.endswith("StateExited"):
            name = ev["stateExitedEventDetails"]["name"]
            step = open_by_name.pop(name, None)
            if step is not None:
                step["ended_at"], step["status"] = ts, SUCCEEDED
        elif kind in {"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}:
            details = next((v for k, v in ev.items() if k.endswith("EventDetails")), {}) or {}
            failure = {"error": details.get("error"), "cause": details.get("cause"), "state": last_entered, "at": ts}
        elif kind.endswith("Failed") and kind != "ExecutionFailed":
            # TaskFailed, LambdaFunctionFailed ...: the error inside the state that was running
            details = next((v for k, v in ev.items() if k.endswith("EventDetails")), {}) or {}
            failure.setdefault("inner", {"error": details.get("error"), "cause": details.get("cause")})
    final = STATUS.get(status, FAILED)
    out = []
    for step in steps:
        if step["status"] == RUNNING and final != RUNNING:
            step["status"] = final
            step["ended_at"] = failure.get("at")
            if final in (*FAILURES, CANCELLED):
                step["error_type"] = failure.get("error") or (failure.get("inner") or {}).get("error")
                step["error_message"] = failure.get("cause") or (failure.get("inner") or {}).get("cause")
        out.append(StepRow(run_id=run_id, **step))
    return out, transitions, failure


class StepFunctionsCollector(Collector):
    name = NAME

    def __init__(self, settings: Settings, *, only_configured: bool, lookback: timedelta, max_history_pages: int) -> None:
        self.settings = settings
        self.only_configured = only_configured
        self.lookback = lookback
        self.max_history_pages = max_history_pages
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
        steps: list[StepRow] = []
        transitions = 0
        failure: dict[str, Any] = {}
        if status in ENDED:
            events = self._history(sfn, ex_arn)
            stats["histories"] += 1
            steps, transitions, failure = steps_from_history(run_id, events, status)
        parts = ex_arn.split(":")
        error = ex.get("error") or failure.get("error")
        cause = ex.get("cause") or failure.get("cause")
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
                cost_usd=transitions * self.settings.prices.sfn_transition if status in ENDED else None,
                account=parts[4] if len(parts) > 4 else "",
                region=parts[3] if len(parts) > 3 else "",
            ),
        )
        batch.steps.extend(steps)

    def _history(self, sfn: Any, ex_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token = None
        for _ in range(self.max_history_pages):
            kwargs: dict[str, Any] = {"executionArn": ex_arn, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = sfn.get_execution_history(**kwargs)
            events.extend(page.get("events", []))
            token = page.get("nextToken")
            if not token:
                break
        return events


def create(settings: Settings) -> StepFunctionsCollector:
    label, where = settings.config_label, "collectors.stepfunctions"
    own = settings.section("collectors").get("stepfunctions", {}) or {}
    which = opt(own, "state_machines", str, label, where, default="all")
    if which not in {"all", "configured"}:
        raise ConfigError(f"{label}: [{where}] state_machines: expected \"all\" or \"configured\", got {which!r}")
    days = opt(own, "lookback_days", int, label, where, default=30)
    pages = opt(own, "max_history_pages", int, label, where, default=25)
    return StepFunctionsCollector(settings, only_configured=which == "configured", lookback=timedelta(days=days), max_history_pages=pages)
