"""When runs happen: cron schedule, fixed interval, file arrival (event), manual; the loop.

Each trigger answers one question with an injected ``now``, so it can be tested without waiting:

- ``CronTrigger.due(now, last)``      schedule slots in ``(last, now]`` (only the latest one when
                                       the pipeline never ran, so a new install does not replay
                                       history; missed slots after a pause are each run once)
- ``IntervalTrigger.due(now, last)``  ``last + interval`` once that has passed (``now`` when the
                                       pipeline never ran): "every N minutes from its last start"
- ``FileArrivalTrigger.new_files()``   files under the pipeline's source prefix not yet loaded
                                       (the ledger remembers what successful runs loaded)
- manual: ``pipeline run`` calls ``run_pipeline`` with ``trigger="manual"`` directly.

``Scheduler.loop()`` polls them every ``poll_seconds`` and runs what is due, until ``stop`` is
set (SIGTERM in the CLI), ``until`` passes or ``max_iterations`` polls were made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.run import RunRequest, RunResult, Runtime, run_pipeline
from pipeline.storage import SourceFile, Storage
from pipepulse.cron import CronSchedule
from pipepulse.settings import PipelineConfig

__all__ = ["CronTrigger", "FileArrivalTrigger", "IntervalTrigger", "Scheduler", "trigger_for"]


@dataclass(frozen=True)
class CronTrigger:
    schedule: CronSchedule
    kind: str = "schedule"

    def due(self, now: datetime, last: datetime | None) -> list[datetime]:
        if last is None:
            return [self.schedule.previous_at_or_before(now)]
        return list(
            self.schedule.between(last + timedelta(microseconds=1), now + timedelta(microseconds=1))
        )


@dataclass(frozen=True)
class IntervalTrigger:
    seconds: int
    kind: str = "interval"

    def due(self, now: datetime, last: datetime | None) -> list[datetime]:
        if last is None:
            return [now]
        nxt = last + timedelta(seconds=self.seconds)
        return [nxt] if nxt <= now else []


@dataclass
class FileArrivalTrigger:
    storage: Storage
    prefix: str
    loaded: Callable[[], set[tuple[str, str]]]
    kind: str = "event"

    def new_files(self) -> list[SourceFile]:
        seen = self.loaded()
        return [f for f in self.storage.list(self.prefix) if (f.key, f.etag) not in seen]


def trigger_for(
    cfg: PipelineConfig, rt: Runtime
) -> CronTrigger | IntervalTrigger | FileArrivalTrigger:
    """A pipeline's trigger: its cron schedule, else its interval, else file arrival."""
    if cfg.schedule:
        return CronTrigger(CronSchedule(cfg.schedule))
    if cfg.interval_seconds:
        return IntervalTrigger(cfg.interval_seconds)
    return FileArrivalTrigger(
        rt.source, f"{cfg.name}/", lambda name=cfg.name: rt.ledger.loaded_inputs(name)
    )


@dataclass
class Scheduler:
    """Fires runs of ``pipelines`` as their triggers say (see module docstring)."""

    rt: Runtime
    pipelines: list[PipelineConfig]
    poll_seconds: float = 60.0
    stop: threading.Event = field(default_factory=threading.Event)
    on_run: Callable[[RunResult], None] | None = None
    _last: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.triggers = {p.name: trigger_for(p, self.rt) for p in self.pipelines}
        for p in self.pipelines:
            row = self.rt.ledger.last_run(p.name)
            if row is not None:
                key = (
                    "started_at"
                    if isinstance(self.triggers[p.name], IntervalTrigger)
                    else "scheduled_for"
                )
                value = row.get(key) or row.get("queued_at")
                if value:
                    self._last[p.name] = datetime.fromisoformat(value)

    def poll(self) -> list[RunResult]:
        """Run everything due at ``rt.clock()``; returns the runs made."""
        out: list[RunResult] = []
        for p in self.pipelines:
            trig = self.triggers[p.name]
            now = self.rt.clock()
            if isinstance(trig, FileArrivalTrigger):
                files = trig.new_files()
                if files:
                    out.append(
                        self._run(
                            RunRequest(
                                p.name,
                                trigger="event",
                                scheduled_for=now,
                                inputs=[(trig.storage, f) for f in files],
                            )
                        )
                    )
                continue
            for slot in trig.due(now, self._last.get(p.name)):
                result = self._run(RunRequest(p.name, trigger=trig.kind, scheduled_for=slot))
                self._last[p.name] = (
                    (result.started_at or slot) if isinstance(trig, IntervalTrigger) else slot
                )
                out.append(result)
        return out

    def _run(self, request: RunRequest) -> RunResult:
        result = run_pipeline(self.rt, request)
        if self.on_run is not None:
            self.on_run(result)
        return result

    def loop(
        self, *, max_iterations: int | None = None, until: datetime | None = None
    ) -> list[RunResult]:
        """Poll until stopped; waits with ``rt.sleep`` (or ``stop.wait`` on the real clock)."""
        results: list[RunResult] = []
        n = 0
        while not self.stop.is_set():
            if until is not None and self.rt.clock() >= until:
                break
            results += self.poll()
            n += 1
            if max_iterations is not None and n >= max_iterations:
                break
            self.rt.sleep(self.poll_seconds)
        return results
