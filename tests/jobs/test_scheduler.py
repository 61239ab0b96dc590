from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from jobs.scheduler import Scheduled, Scheduler, build_jobs, job_lock
from pipepulse.cron import CronSchedule
from store.db import connect
from store.schema import collector_runs, locks
from store.state import acquire_lock


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_jobs_fire_on_cron_and_missed_slots_coalesce(engine):
    clock = Clock(datetime(2026, 11, 20, 12, 1, tzinfo=UTC))
    fired: list[tuple[str, datetime]] = []
    jobs = [Scheduled("fast", CronSchedule("*/5 * * * *"), lambda now: fired.append(("fast", now))),
            Scheduled("hourly", CronSchedule("0 * * * *"), lambda now: fired.append(("hourly", now)))]
    sched = Scheduler(engine, jobs, clock=clock)
    assert sched.run_pending() == []
    assert sched.seconds_to_next() == 30.0  # capped wait; next firing 12:05 is 240 s away
    clock.now = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)
    assert [o.job for o in sched.run_pending()] == ["fast"]
    clock.now = datetime(2026, 11, 20, 13, 2, tzinfo=UTC)  # 11 slots of "fast" missed: one run
    assert [o.status for o in sched.run_pending()] == ["ran", "ran"]
    assert fired == [("fast", datetime(2026, 11, 20, 12, 5, tzinfo=UTC)), ("fast", clock.now), ("hourly", clock.now)]
    assert jobs[0].next_at == datetime(2026, 11, 20, 13, 5, tzinfo=UTC)


def test_lock_is_exclusive_across_engines_and_threads(engine, db_url, now):
    other = connect(db_url)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow(at):
        started.set()
        release.wait(10)
        ran.append("a")

    a = Scheduler(engine, [Scheduled("collect-x", CronSchedule("* * * * *"), slow)], clock=lambda: now)
    b = Scheduler(other, [Scheduled("collect-x", CronSchedule("* * * * *"), lambda at: ran.append("b"))], clock=lambda: now)
    t = threading.Thread(target=a.run_job, args=(a.jobs[0], now))
    t.start()
    assert started.wait(10)
    outcome = b.run_job(b.jobs[0], now)
    assert outcome.status == "skipped"
    assert outcome.detail.startswith(f"another pass of this job is running (pid {os.getpid()} on host ")
    release.set()
    t.join(10)
    assert b.run_job(b.jobs[0], now).status == "ran"
    assert ran == ["a", "b"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(locks)).scalar_one() == 0  # released
    # A crashed holder on another host (its row left, no heartbeat since) does not block for ever:
    # on SQLite until its lock expires; on PostgreSQL at once (no session holds the advisory lock).
    assert acquire_lock(other, "job:stale", "elsewhere:1:x", now=now, ttl=timedelta(minutes=5))
    with job_lock(engine, "stale", now=now + timedelta(minutes=1), ttl=timedelta(minutes=5)) as second:
        assert second is db_url.startswith("postgresql")
    if not second:
        with job_lock(engine, "stale", now=now + timedelta(minutes=6), ttl=timedelta(minutes=5)) as later:
            assert later
    other.dispose()


def test_sigterm_stops_the_loop(engine, make_settings, now):
    settings = make_settings('[collectors]\nsources = ["reference"]\n[collectors.reference]\ncron = "* * * * *"\n'
                             '[schedule]\ndetect = ""\nforecast = ""\ndigest_daily = ""\ndigest_weekly = ""\nretention = ""\nalerts_immediate = ""\nbackup = ""\n')
    jobs = build_jobs(settings, engine)
    assert [(j.name, j.cron.expression) for j in jobs] == [("reference", "* * * * *")]
    clock = Clock(now)
    sched = Scheduler(engine, jobs, clock=clock)
    waits: list[float] = []
    previous = signal.getsignal(signal.SIGTERM)
    sched.install_signal_handlers()

    def wait(seconds):
        waits.append(seconds)
        clock.now += timedelta(minutes=1)
        if len(waits) == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        sched.run_forever(wait=wait)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert sched.stopping.is_set()
    assert [o.status for o in sched.outcomes] == ["ran", "ran"]  # 12:01 and 12:02; stopped while waiting after that
    with engine.connect() as conn:
        assert conn.execute(sa.select(collector_runs.c.status)).scalars().all() == ["succeeded"] * 2


def test_optional_jobs_from_config(engine, make_settings):
    settings = make_settings('[collectors]\nsources = []\n[schedule]\ndetect = "*/10 * * * *"\nforecast = ""\n'
                             'digest_daily = ""\ndigest_weekly = ""\nretention = ""\nalerts_immediate = ""\nbackup = ""\n')
    assert [(j.name, j.cron.expression) for j in build_jobs(settings, engine)] == [("detect", "*/10 * * * *")]
