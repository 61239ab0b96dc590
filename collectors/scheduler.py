"""``pipepulse schedule``: a long-running scheduler with a cron expression per job.

Jobs are every enabled collector source (cron from ``[collectors.<source>] cron``) plus the
optional jobs in ``[schedule]``: ``detect`` (anomaly detection), ``forecast``,
``digest_daily``, ``digest_weekly`` and ``retention``, each a cron expression, or ``""`` to
turn it off; they run when their module is installed. ``lock_ttl_minutes`` (default 60) bounds
how long a crashed pass can hold its lock.

Two passes of the same job never overlap, also across processes and hosts: a job runs only
while holding the store lock ``job:<name>`` (``store.state.acquire_lock``, which works on SQLite
and PostgreSQL); ``pipepulse collect`` takes the same locks. A firing missed while a job ran (or
while the process was down) runs once, not once per missed slot. SIGTERM/SIGINT stop the loop
after the job in hand. The clock and the wait are injectable for tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pipepulse.cron import CronSchedule
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, opt

__all__ = ["OPTIONAL_JOBS", "Job", "JobOutcome", "Scheduler", "build_jobs", "job_lock"]

log = logging.getLogger(__name__)

# job -> (module, function, default cron, extra keyword arguments). Imported lazily.
OPTIONAL_JOBS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "detect": ("pipepulse.detect", "run_detection", "*/15 * * * *", {}),
    "forecast": ("pipepulse.forecasting", "snapshot_forecasts", "0 6 * * *", {}),
    "digest_daily": ("alerts.digest", "run_digest", "0 8 * * *", {"period": "daily"}),
    "digest_weekly": ("alerts.digest", "run_digest", "0 8 * * 1", {"period": "weekly"}),
    "retention": ("pipepulse.ops.retention", "apply_retention", "30 3 * * *", {}),
}


@dataclass
class Job:
    name: str
    cron: CronSchedule
    run: Callable[[datetime], Any]  # called with the moment it fires
    next_at: datetime | None = None


@dataclass
class JobOutcome:
    job: str
    at: datetime
    status: str  # ran | failed | skipped (another pass holds the lock)
    detail: str = ""
    result: Any = field(default=None, repr=False)


@contextmanager
def job_lock(engine: Engine, name: str, *, now: datetime, ttl: timedelta, owner: str | None = None) -> Iterator[bool]:
    """Hold the store lock ``job:<name>`` for the block; yields False when someone else holds it."""
    from store.state import acquire_lock, release_lock

    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    got = acquire_lock(engine, f"job:{name}", owner, now=now, ttl=ttl)
    try:
        yield got
    finally:
        if got:
            release_lock(engine, f"job:{name}", owner)


def build_jobs(settings: Settings, engine: Engine, *, session_factory: Callable[[], Any] | None = None) -> list[Job]:
    """The jobs the config asks for: enabled collector sources, then the optional jobs."""
    from collectors.runner import enabled_sources, run_source

    jobs: list[Job] = []
    for config in enabled_sources(settings):
        jobs.append(Job(config.name, CronSchedule(config.cron),
                        lambda now, c=config: run_source(settings, engine, c, now=now, session_factory=session_factory)))
    table = settings.section("schedule")
    label = settings.config_label
    known = set(OPTIONAL_JOBS) | {"lock_ttl_minutes"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{label}: [schedule] unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    for name, (module, func, default, extra) in OPTIONAL_JOBS.items():
        expression = opt(table, name, str, label, "schedule", default=default)
        if not expression:
            continue
        try:
            cron = CronSchedule(expression)
        except ValueError as exc:
            raise ConfigError(f"{label}: [schedule] {name}: {exc}") from exc
        if name not in table and importlib.util.find_spec(module.split(".")[0]) is None:
            continue
        jobs.append(Job(name, cron, _optional(settings, engine, module, func, extra)))
    return jobs


def _optional(settings: Settings, engine: Engine, module: str, func: str, extra: dict[str, Any]) -> Callable[[datetime], Any]:
    def run(now: datetime) -> Any:
        fn = getattr(importlib.import_module(module), func)
        return fn(settings, engine, now=now, **extra)

    return run


class Scheduler:
    """Runs due jobs under their locks until stopped."""

    def __init__(
        self,
        engine: Engine,
        jobs: list[Job],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lock_ttl: timedelta = timedelta(hours=1),
        owner: str | None = None,
        max_wait_seconds: float = 30.0,
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_wait_seconds = max_wait_seconds
        self.stopping = threading.Event()
        self.outcomes: list[JobOutcome] = []
        start = clock()
        for job in jobs:
            job.next_at = job.cron.next_after(start)

    def stop(self, *_: Any) -> None:
        """Stop after the job in hand (signal handler)."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)

    def run_job(self, job: Job, now: datetime) -> JobOutcome:
        """Run one job now, under its lock."""
        with job_lock(self.engine, job.name, now=now, ttl=self.lock_ttl, owner=self.owner) as got:
            if not got:
                outcome = JobOutcome(job.name, now, "skipped", "another pass of this job is running")
            else:
                try:
                    result = job.run(now)
                    failed = getattr(result, "status", "") == "failed"
                    outcome = JobOutcome(job.name, now, "failed" if failed else "ran", getattr(result, "error", "") or "", result)
                except Exception as exc:  # noqa: BLE001 - one job's failure does not stop the scheduler
                    log.exception("scheduled job failed", extra={"job": job.name})
                    outcome = JobOutcome(job.name, now, "failed", f"{type(exc).__name__}: {exc}")
        log.info("scheduled job %s", outcome.status, extra={"job": job.name, "detail": outcome.detail})
        self.outcomes.append(outcome)
        return outcome

    def run_pending(self) -> list[JobOutcome]:
        """Run every job whose firing time has come; each fires once however many slots passed."""
        out = []
        for job in self.jobs:
            if self.stopping.is_set():
                break
            now = self.clock()
            if job.next_at is not None and now >= job.next_at:
                out.append(self.run_job(job, now))
                job.next_at = job.cron.next_after(self.clock())
        return out

    def seconds_to_next(self) -> float:
        if not self.jobs:
            return self.max_wait_seconds
        soonest = min(j.next_at for j in self.jobs if j.next_at is not None)
        return max(0.0, min(self.max_wait_seconds, (soonest - self.clock()).total_seconds()))

    def run_forever(self, *, wait: Callable[[float], Any] | None = None) -> None:
        """Loop until ``stop()``; ``wait(seconds)`` sleeps (default: wait on the stop event)."""
        wait = wait or self.stopping.wait
        log.info("scheduler started", extra={"jobs": {j.name: j.cron.expression for j in self.jobs}})
        while not self.stopping.is_set():
            self.run_pending()
            if self.stopping.is_set():
                break
            wait(self.seconds_to_next())
        log.info("scheduler stopped")
