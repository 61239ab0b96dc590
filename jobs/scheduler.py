"""``pipepulse schedule``: a long-running scheduler with a cron expression per job.

The jobs are those of ``jobs/registry.py``: ``collect`` as one job per enabled collector source
(cron from ``[collectors.<source>] cron``), then ``detect``, ``forecast``, ``digest_daily``,
``digest_weekly`` and ``retention`` on their registry cron, which ``[schedule] <job> = "..."``
changes (``""`` turns a job off). ``[schedule] lock_ttl_minutes`` (default 60) bounds how long a
crashed pass can hold its lock.

Two passes of the same job never overlap, also across processes and hosts: a job runs only
while holding the store lock ``job:<name>`` (``store.state.acquire_lock``, which works on SQLite
and PostgreSQL); ``pipepulse collect`` takes the same locks. A firing missed while a job ran (or
while the process was down) runs once, not once per missed slot. SIGTERM/SIGINT stop the loop
after the job in hand. The clock and the wait are injectable for tests.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from collectors.runner import enabled_sources, run_source
from jobs.registry import JOBS, Job
from pipepulse.cron import CronSchedule
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt
from store.db import is_database_error, store_error
from store.state import acquire_lock, release_lock

__all__ = ["JobOutcome", "Scheduled", "Scheduler", "build_jobs", "job_lock", "lock_ttl"]

log = logging.getLogger(__name__)


@dataclass
class Scheduled:
    """A job as the scheduler runs it: its cron and a call taking the moment it fires."""

    name: str
    cron: CronSchedule
    run: Callable[[datetime], Any]
    next_at: datetime | None = None


@dataclass
class JobOutcome:
    job: str
    at: datetime
    status: str  # ran | failed | skipped (another pass holds the lock)
    detail: str = ""
    result: Any = field(default=None, repr=False)
    database_down: bool = False  # failed because the database could not be reached


@contextmanager
def job_lock(engine: Engine, name: str, *, now: datetime, ttl: timedelta, owner: str | None = None) -> Iterator[bool]:
    """Hold the store lock ``job:<name>`` for the block; yields False when someone else holds it."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    got = acquire_lock(engine, f"job:{name}", owner, now=now, ttl=ttl)
    try:
        yield got
    finally:
        if got:
            try:
                release_lock(engine, f"job:{name}", owner)
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                # the lock expires (or is taken over once this process is gone)
                log.warning("could not release lock job:%s: %s", name, store_error(engine, exc))


def lock_ttl(settings: Settings) -> timedelta:
    """``[schedule] lock_ttl_minutes``: how long a crashed pass may hold its job's lock."""
    minutes = opt(settings.section("schedule"), "lock_ttl_minutes", int, settings.config_label, "schedule", default=60)
    return timedelta(minutes=minutes)


def build_jobs(settings: Settings, engine: Engine, *, session_factory: Callable[[], Any] | None = None) -> list[Scheduled]:
    """The registry's jobs as the config schedules them: each enabled source, then the rest."""
    table = settings.section("schedule")
    label = settings.config_label
    known = {j.name for j in JOBS if not j.per_source} | {"lock_ttl_minutes"}
    check_keys(table, "schedule", label, known=known)
    out: list[Scheduled] = []
    for job in JOBS:
        if job.per_source:
            out += _per_source(settings, engine, session_factory)
            continue
        expression = opt(table, job.name, str, label, "schedule", default=job.cron)
        if not expression:
            continue
        try:
            cron = CronSchedule(expression)
        except ValueError as exc:
            raise ConfigError(f"{label}: [schedule] {job.name}: {exc}") from exc
        out.append(Scheduled(job.name, cron, _call(job, settings, engine)))
    return out


def _per_source(settings: Settings, engine: Engine, session_factory: Callable[[], Any] | None) -> list[Scheduled]:
    return [
        Scheduled(c.name, CronSchedule(c.cron),
                  lambda now, c=c: run_source(settings, engine, c, now=now, session_factory=session_factory))
        for c in enabled_sources(settings)
    ]


def _call(job: Job, settings: Settings, engine: Engine) -> Callable[[datetime], Any]:
    def run(now: datetime) -> Any:
        return job.run(settings, engine, now=now)

    return run


class Scheduler:
    """Runs due jobs under their locks until stopped."""

    def __init__(
        self,
        engine: Engine,
        jobs: list[Scheduled],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lock_ttl: timedelta = timedelta(hours=1),
        owner: str | None = None,
        max_wait_seconds: float = 30.0,
        on_outcome: Callable[[JobOutcome, float], Any] | None = None,
        backoff_seconds: tuple[float, float] = (30.0, 600.0),
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_wait_seconds = max_wait_seconds
        self.stopping = threading.Event()
        self.outcomes: list[JobOutcome] = []
        # called with each outcome and its run time in seconds (the /metrics of jobs/metrics.py)
        self.on_outcome = on_outcome
        self.database_down_since: datetime | None = None  # set by a job failing on the database
        self.backoff_seconds = backoff_seconds
        self._failures: dict[str, int] = {}  # job -> database failures in a row
        start = clock()
        for job in jobs:
            job.next_at = job.cron.next_after(start)

    def stop(self, *_: Any) -> None:
        """Stop after the job in hand (signal handler)."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)

    def health(self) -> str:
        """``ok``, or ``database unreachable since <time>`` while jobs fail on the database."""
        if self.database_down_since is None:
            return "ok"
        return f"database unreachable since {self.database_down_since:%Y-%m-%d %H:%M:%S} UTC"

    def run_job(self, job: Scheduled, now: datetime) -> JobOutcome:
        """Run one job now, under its lock; a database error is an outcome, never a crash."""
        started = time.monotonic()
        try:
            outcome = self._run_locked(job, now)
        except Exception as exc:  # noqa: BLE001 - the scheduler outlives any job's failure
            if not is_database_error(exc):
                log.exception("scheduled job failed", extra={"job": job.name})
                outcome = JobOutcome(job.name, now, "failed", f"{type(exc).__name__}: {exc}")
            else:
                outcome = JobOutcome(job.name, now, "failed", str(store_error(self.engine, exc)), database_down=True)
        if outcome.database_down:
            if self.database_down_since is None:
                self.database_down_since = now
        elif outcome.status == "ran":
            self.database_down_since = None
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome, time.monotonic() - started)
            except Exception:  # noqa: BLE001 - metrics never stop the scheduler
                log.exception("recording the job's metrics failed", extra={"job": job.name})
        return outcome

    def _run_locked(self, job: Scheduled, now: datetime) -> JobOutcome:
        with job_lock(self.engine, job.name, now=now, ttl=self.lock_ttl, owner=self.owner) as got:
            if not got:
                outcome = JobOutcome(job.name, now, "skipped", "another pass of this job is running")
            else:
                try:
                    result = job.run(now)
                    failed = getattr(result, "status", "") == "failed"
                    outcome = JobOutcome(job.name, now, "failed" if failed else "ran", getattr(result, "error", "") or "", result,
                                         database_down=bool(getattr(result, "store_down", False)))
                except Exception as exc:  # noqa: BLE001 - one job's failure does not stop the scheduler
                    if is_database_error(exc):
                        raise
                    log.exception("scheduled job failed", extra={"job": job.name})
                    outcome = JobOutcome(job.name, now, "failed", f"{type(exc).__name__}: {exc}")
        if not outcome.database_down:
            log.info("scheduled job %s", outcome.status, extra={"job": job.name, "detail": outcome.detail})
        return outcome

    def _next_try(self, job: Scheduled, outcome: JobOutcome) -> datetime:
        """The cron's next firing; after a database failure, a backoff (doubling up to the cap)."""
        after_cron = job.cron.next_after(self.clock())
        if not outcome.database_down:
            self._failures.pop(job.name, None)
            return after_cron
        n = self._failures[job.name] = self._failures.get(job.name, 0) + 1
        first, cap = self.backoff_seconds
        retry = self.clock() + timedelta(seconds=min(cap, first * 2 ** (n - 1)))
        at = min(retry, after_cron)
        log.warning("job %s failed: %s; next try at %s UTC", job.name, outcome.detail, f"{at:%Y-%m-%d %H:%M:%S}",
                    extra={"job": job.name})
        return at

    def run_pending(self) -> list[JobOutcome]:
        """Run every job whose firing time has come; each fires once however many slots passed."""
        out = []
        for job in self.jobs:
            if self.stopping.is_set():
                break
            now = self.clock()
            if job.next_at is not None and now >= job.next_at:
                outcome = self.run_job(job, now)
                out.append(outcome)
                job.next_at = self._next_try(job, outcome)
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
