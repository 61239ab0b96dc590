"""Glue job runs -> ``runs`` with a cost estimate at the DPU-hour price.

Per job a ``NewestFirst`` watermark (newest ``StartedOn`` stored, runs still running). AWS
returns ``GetJobRuns`` newest first, so paging stops at the first page wholly older than the
mark (moto returns oldest first, which only means reading all its pages). Capacity: the run's
``DPUSeconds`` when Glue reports it (auto-scaling runs), else ``MaxCapacity`` or
``NumberOfWorkers`` x the worker type's DPU, times ``ExecutionTime``; Glue 2.0+ bills at least
one minute, as do Python shell jobs (MaxCapacity 0.0625 or 1). ``cost_usd`` = DPU-hours x
``[prices] glue_dpu_hour`` ($0.44), or ``glue_flex_dpu_hour`` ($0.29) for ExecutionClass FLEX.

Config ``[collectors.glue]``: ``jobs = "all" | "configured"`` (default "all": jobs not named by
a ``[[pipelines]]`` resource are stored under their own name), ``lookback_days`` (default 30).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, RunRow
from collectors.incremental import NewestFirst
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt
from pipepulse.vocab import CANCELLED, FAILED, FAILURES, QUEUED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = ["GlueCollector", "create", "dpu_hour_price", "dpu_seconds"]

NAME = "glue"
# Glue JobRunState -> ours
STATUS = {
    "STARTING": QUEUED,
    "WAITING": QUEUED,
    "RUNNING": RUNNING,
    "STOPPING": RUNNING,
    "STOPPED": CANCELLED,
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
    "ERROR": FAILED,
    "TIMEOUT": TIMED_OUT,
    "EXPIRED": TIMED_OUT,
}
ENDED = {"STOPPED", "SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "EXPIRED"}  # runs that will not change
WORKER_DPU = {"Standard": 1.0, "G.025X": 0.25, "G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0, "Z.2X": 2.0}


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def dpu_seconds(run: dict[str, Any]) -> float | None:
    """DPU-seconds a Glue job run is billed for, or None when its capacity is unknown."""
    if run.get("DPUSeconds") is not None:
        return float(run["DPUSeconds"])
    seconds = run.get("ExecutionTime")
    if seconds is None:
        return None
    version = str(run.get("GlueVersion") or "")
    capacity = run.get("MaxCapacity") or run.get("AllocatedCapacity")
    python_shell = not run.get("NumberOfWorkers") and capacity is not None and capacity <= 1  # Spark needs >= 2 DPU
    if python_shell or (version and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 2):
        seconds = max(seconds, 60)  # 1-minute minimum on Glue 2.0+ and for Python shell jobs
    # Spark on Glue 0.9/1.0 bills a 10-minute minimum; not applied: moto answers GlueVersion 0.9
    # for a 4.0 job, so it could not be told from a real old job in tests (see the h17s note)
    if run.get("NumberOfWorkers") and run.get("WorkerType") in WORKER_DPU:
        return float(run["NumberOfWorkers"] * WORKER_DPU[run["WorkerType"]] * seconds)
    if capacity:
        return float(capacity * seconds)
    return None


def dpu_hour_price(run: dict[str, Any], prices: Any) -> float:
    """The DPU-hour list price of a run: Flex ($0.29) or standard ($0.44), from ``[prices]``."""
    return float(prices.glue_flex_dpu_hour if str(run.get("ExecutionClass") or "").upper() == "FLEX" else prices.glue_dpu_hour)


class GlueCollector(Collector):
    name = NAME
    scope = "regional"  # every account x region (collectors/accounts.py)

    def __init__(self, settings: Settings, *, only_configured: bool, lookback: timedelta) -> None:
        self.settings = settings
        self.only_configured = only_configured
        self.lookback = lookback
        self.pipelines = {p.resource: p.name for p in settings.pipelines if p.source == NAME and p.resource}

    def collect(self, ctx: Context) -> Batch:
        glue = ctx.client("glue")
        batch = Batch()
        if self.only_configured:
            jobs = sorted(self.pipelines)
        else:
            jobs = []
            for page in glue.get_paginator("get_jobs").paginate():
                jobs.extend(j["Name"] for j in page.get("Jobs", []))
        stats = {"jobs": len(jobs), "runs": 0}
        for job in jobs:
            key = f"job:{job}"
            mark = NewestFirst.load(ctx.watermark(key))
            before = mark.dump()
            stats["runs"] += self._job(ctx, glue, batch, job, self.pipelines.get(job, job), mark)
            if mark.dump() != before:
                batch.watermarks[key] = mark.dump()
        batch.details.update(stats)
        return batch

    def _job(self, ctx: Context, glue: Any, batch: Batch, job: str, pipeline: str, mark: NewestFirst) -> int:
        oldest = ctx.now - self.lookback
        fresh: dict[str, dict[str, Any]] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"JobName": job, "MaxResults": 200}
            if token:
                kwargs["NextToken"] = token
            page = glue.get_job_runs(**kwargs)
            runs = page.get("JobRuns", [])
            for run in runs:
                started = _utc(run.get("StartedOn"))
                if started is None:
                    raise CollectorError(NAME, f"job run {job}/{run.get('Id')} has no StartedOn")
                if (mark.start is None and started < oldest) or not mark.is_new(run["Id"], started):
                    if run["Id"] in mark.running:
                        fresh[run["Id"]] = run  # a run seen running: its newer state is here
                    continue
                fresh[run["Id"]] = run
            token = page.get("NextToken")
            wholly_old = runs and all(mark.reached(_utc(r["StartedOn"])) for r in runs)
            if not token or wholly_old:
                break
        for run_id in sorted(mark.running - set(fresh)):
            try:
                fresh[run_id] = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
            except CollectorError as exc:
                if "EntityNotFound" not in str(exc):
                    raise
                mark.running.discard(run_id)
        stored = 0
        for run in sorted(fresh.values(), key=lambda r: _utc(r["StartedOn"])):
            state = run.get("JobRunState")
            if state not in STATUS:
                raise CollectorError(NAME, f"job run {job}/{run['Id']}: unexpected JobRunState {state!r}")
            ended = state in ENDED
            if run["Id"] in mark.running and not ended and not mark.is_new(run["Id"], _utc(run["StartedOn"])):
                continue  # still running, already stored as such
            batch.runs.append(self._row(job, pipeline, run))
            mark.advance(run["Id"], _utc(run["StartedOn"]), ended=ended)
            stored += 1
        return stored

    def _row(self, job: str, pipeline: str, run: dict[str, Any]) -> RunRow:
        state = run["JobRunState"]
        ended = state in ENDED
        started = _utc(run["StartedOn"])
        dpu_s = dpu_seconds(run) if ended else None
        return RunRow(
            run_id=f"glue:{job}:{run['Id']}",
            pipeline=pipeline,
            source=NAME,
            status=STATUS[state],
            trigger="schedule" if run.get("TriggerName") else "manual",
            attempt=int(run.get("Attempt") or 0) + 1,
            started_at=started,
            ended_at=_utc(run.get("CompletedOn")) if ended else None,
            duration_seconds=self._duration(run, started) if ended else None,
            error_type=state if STATUS[state] in FAILURES else None,
            error_message=run.get("ErrorMessage") if STATUS[state] != SUCCEEDED else None,
            correlation_id=run["Id"],
            cost_usd=dpu_s / 3600 * dpu_hour_price(run, self.settings.prices) if dpu_s is not None else None,
            region=self.settings.aws_region,
        )


    @staticmethod
    def _duration(run: dict[str, Any], started: datetime | None) -> float | None:
        """Wall-clock seconds (CompletedOn - StartedOn); ``ExecutionTime`` (billed seconds) if unknown."""
        completed = _utc(run.get("CompletedOn"))
        if completed is not None and started is not None and completed >= started:
            return (completed - started).total_seconds()
        return float(run["ExecutionTime"]) if run.get("ExecutionTime") is not None else None


def create(settings: Settings) -> GlueCollector:
    label, where = settings.config_label, "collectors.glue"
    own = settings.section("collectors").get("glue", {}) or {}
    which = opt(own, "jobs", str, label, where, default="all")
    if which not in {"all", "configured"}:
        raise ConfigError(f"{label}: [{where}] jobs: expected \"all\" or \"configured\", got {which!r}")
    days = opt(own, "lookback_days", int, label, where, default=30)
    return GlueCollector(settings, only_configured=which == "configured", lookback=timedelta(days=days))
