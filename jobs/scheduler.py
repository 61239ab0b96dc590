"""``pipepulse schedule``: a long-running scheduler with a cron expression per job.

The jobs are those of ``jobs/registry.py``: ``collect`` as one job per enabled collector source
(cron from ``[collectors.<source>] cron``), then ``detect``, ``forecast``, ``digest_daily``,
``digest_weekly`` and ``retention`` on their registry cron, which ``[schedule] <job> = "..."``
changes (``""`` turns a job off). ``[schedule] lock_ttl_minutes`` (default 60) bounds how long a
crashed pass can hold its lock.

Two passes of the same job never overlap, also across processes and hosts: a job runs only
while holding the store lock ``job:<name>`` (``store.state.acquire_lock``, which works on SQLite
and PostgreSQL; on PostgreSQL under a session advisory lock too; its heartbeat tells other hosts
the owner lives); ``pipepulse collect`` takes the same locks. A collector source's pass records
the cron slot it fills (``collector_runs.slot``): a second scheduler on the same database that
fires for a slot the first already filled skips it instead of collecting the same window again. A firing missed while a job ran (or
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

from collectors.runner import enabled_sources, run_source, sync_pipelines
from jobs.registry import JOBS, Job
from pipepulse.cron import CronSchedule
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt
from store.db import is_database_error, store_error
from store.state import (
    HEARTBEAT_EVERY,
    acquire_lock,
    heartbeat_lock,
    holder,
    release_lock,
    session_lock,
    slot_pass,
)

__all__ = ["JobOutcome", "Scheduled", "Scheduler", "SlotTaken", "build_jobs", "job_lock", "lock_ttl"]

log = logging.getLogger(__name__)


@dataclass
class Scheduled:
    """A job as the scheduler runs it: its cron and a call taking the moment it fires."""

    name: str
    cron: CronSchedule
    run: Callable[..., Any]  # (now) -> result; with ``slotted``, (now, slot)
    next_at: datetime | None = None
    slotted: bool = False  # a collector source: the cron firing it fills is recorded, and run once


@dataclass
class JobOutcome:
    job: str
    at: datetime
    status: str  # ran | failed | skipped (another pass holds the lock)
    detail: str = ""
    result: Any = field(default=None, repr=False)
    database_down: bool = False  # failed because the database could not be reached


@contextmanager
def job_lock(engine: Engine, name: str, *, now: datetime, ttl: timedelta, owner: str | None = None,
             heartbeat: timedelta = HEARTBEAT_EVERY) -> Iterator[bool]:
    """Hold the store lock ``job:<name>`` for the block; yields False when someone else holds it.

    On PostgreSQL a session advisory lock comes first (a killed owner's session, and its lock,
    end with it); the lock row names the owner, and a thread refreshes its heartbeat every
    ``heartbeat`` while the block runs, so another host can tell a live owner from a dead one."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lock = f"job:{name}"
    with session_lock(engine, lock) as session:
        if session is False:
            yield False
            return
        got = acquire_lock(engine, lock, owner, now=now, ttl=ttl, session_held=bool(session))
        beating = _Heartbeat(engine, lock, owner, now=now, ttl=ttl, every=heartbeat) if got else None
        try:
            yield got
        finally:
            if beating is not None:
                beating.stop()
            if got:
                try:
                    release_lock(engine, lock, owner)
                except Exception as exc:
                    if not is_database_error(exc):
                        raise
                    # the lock expires (or is taken over once this process is gone)
                    log.warning("could not release lock job:%s: %s", name, store_error(engine, exc), extra={"job": name})


class _Heartbeat:
    """Refreshes a held lock's heartbeat every ``every`` in a daemon thread, on the lock's clock
    (``now`` at acquisition plus the time since)."""

    def __init__(self, engine: Engine, lock: str, owner: str, *, now: datetime, ttl: timedelta, every: timedelta) -> None:
        self.engine, self.lock, self.owner, self.ttl = engine, lock, owner, ttl
        self.base, self.t0 = now, time.monotonic()
        self.every = every.total_seconds()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {lock}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.every):
            now = self.base + timedelta(seconds=time.monotonic() - self.t0)
            try:
                if not heartbeat_lock(self.engine, self.lock, self.owner, now=now, ttl=self.ttl):
                    log.warning("lock %s was taken over while its pass still runs", self.lock)
            except Exception as exc:  # noqa: BLE001 - a missed beat is not the pass's failure
                log.warning("lock %s: heartbeat failed: %s", self.lock, exc)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=self.every + 35)


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
    synced: list[bool] = []

    def run(config: Any, now: datetime, slot: datetime | None = None) -> Any:
        if not synced:  # the pipelines table, as `collect` fills it (once per scheduler)
            sync_pipelines(settings, engine, now=now)
            synced.append(True)
        if slot is not None and (done := slot_pass(engine, config.name, slot)) is not None:
            # another scheduler on this database already filled this slot: not again
            return SlotTaken(config.name, slot, done["collector_run_id"])
        return run_source(settings, engine, config, now=now, session_factory=session_factory, slot=slot)

    return [Scheduled(c.name, CronSchedule(c.cron), lambda now, slot=None, c=c: run(c, now, slot), slotted=True)
            for c in enabled_sources(settings)]


@dataclass
class SlotTaken:
    """A source's schedule slot another scheduler's pass already filled (the job is skipped)."""

    source: str
    slot: datetime
    collector_run_id: int
    status: str = "skipped"

    @property
    def error(self) -> str:
        return (f"the {self.slot:%Y-%m-%d %H:%M} UTC pass of {self.source} already ran "
                f"(collector run {self.collector_run_id}, another scheduler)")


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
                who = holder(self.engine, f"job:{job.name}", now=now)
                outcome = JobOutcome(job.name, now, "skipped", "another pass of this job is running"
                                     + (f" ({who.describe(now)})" if who is not None else ""))
            else:
                try:
                    result = job.run(now, job.next_at) if job.slotted else job.run(now)
                    status = getattr(result, "status", "")
                    outcome = JobOutcome(job.name, now, status if status in ("failed", "skipped") else "ran",
                                         getattr(result, "error", "") or "", result,
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
