"""Locks that belong to live processes, across hosts: the owner's heartbeat, takeover of another
host's lock once its heartbeat is stale (PostgreSQL: once no session holds the advisory lock),
skips that name the owner and fail when it looks dead, and one pass per schedule slot."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cli.commands.collect import cmd_collect
from jobs.scheduler import Scheduler, build_jobs, job_lock
from store.schema import collector_runs, locks, pipelines
from store.state import acquire_lock, session_lock, start_collector_run

OFF = '[schedule]\ndetect = ""\nforecast = ""\ndigest_daily = ""\ndigest_weekly = ""\nretention = ""\nalerts_immediate = ""\nbackup = ""\n'


def _row(engine, name):
    with engine.connect() as conn:
        return conn.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()


def test_the_owner_refreshes_its_heartbeat_while_it_runs(engine, now):
    with job_lock(engine, "glue", now=now, ttl=timedelta(minutes=5), heartbeat=timedelta(seconds=0.05)) as got:
        assert got
        first = _row(engine, "job:glue")
        assert (first["host"], first["heartbeat_at"]) != ("", None) and first["pid"] is not None
        deadline = time.monotonic() + 5
        while _row(engine, "job:glue")["heartbeat_at"] == first["heartbeat_at"] and time.monotonic() < deadline:
            time.sleep(0.05)
        later = _row(engine, "job:glue")
        assert later["heartbeat_at"] > first["heartbeat_at"] and later["expires_at"] > first["expires_at"]
    assert _row(engine, "job:glue") is None


def test_another_hosts_lock_is_taken_over_only_when_its_heartbeat_is_stale(engine, db_url, now):
    """SQLite: a lock of another host with a recent heartbeat is respected; once the heartbeat is
    older than two minutes it is taken over and the pass its owner left running is interrupted.
    PostgreSQL: no session holds the advisory lock, so that owner is gone: taken over at once."""
    ttl = timedelta(hours=1)
    assert acquire_lock(engine, "job:glue", "otherhost:77:abc", now=now, ttl=ttl)
    left = start_collector_run(engine, "glue", now=now)
    with job_lock(engine, "glue", now=now + timedelta(seconds=90), ttl=ttl) as got:
        assert got is db_url.startswith("postgresql")
    if not got:
        with job_lock(engine, "glue", now=now + timedelta(seconds=121), ttl=ttl) as got:
            assert got
    with engine.connect() as conn:
        status, error = conn.execute(sa.select(collector_runs.c.status, collector_runs.c.error)
                                     .where(collector_runs.c.collector_run_id == left)).one()
    assert (status, error) == ("interrupted", "interrupted: its process pid 77 on host otherhost died")


def test_postgresql_session_lock_excludes_another_session(engine, db_url, now):
    if not db_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    with session_lock(engine, "job:ce") as held:
        assert held is True
        with session_lock(engine, "job:ce") as second:
            assert second is False
        with job_lock(engine, "ce", now=now, ttl=timedelta(minutes=5)) as got:
            assert not got  # no lock row at all: the advisory lock alone keeps it out
    with job_lock(engine, "ce", now=now, ttl=timedelta(minutes=5)) as got:
        assert got


def test_collect_skip_names_the_owner_and_fails_when_it_looks_dead(aws, make_settings, engine, db_url, now, capsys):
    """A live owner: skipped, exit 0, the owner named. An owner of another host whose heartbeat
    stopped 90 s ago (not yet stale): skipped, but exit 1 saying it looks dead (PostgreSQL:
    taken over, since no session holds its advisory lock)."""
    settings = make_settings('[collectors]\nsources = ["reference"]\n', AWS_ENDPOINT_URL=aws.endpoint)
    args = type("A", (), {"source": None, "local_aws": False})()
    with job_lock(engine, "reference", now=now, ttl=timedelta(hours=1)) as got:
        assert got
        assert cmd_collect(args, settings, now=now + timedelta(seconds=10)) == 0
        out = capsys.readouterr().out
        assert "reference      skipped: another pass of this source is running (pid " in out
        assert f"since {now:%Y-%m-%d %H:%M:%S} UTC, last heartbeat 10 s ago)" in out
    assert acquire_lock(engine, "job:reference", "otherhost:77:abc", now=now, ttl=timedelta(hours=1))
    code = cmd_collect(args, settings, now=now + timedelta(seconds=90))
    out = capsys.readouterr().out
    if db_url.startswith("postgresql"):
        assert code == 0 and "reference      succeeded" in out
    else:
        assert code == 1
        assert "(pid 77 on host otherhost since" in out and "last heartbeat 90 s ago; that owner looks dead" in out
        assert "error: reference not collected: the owner of the lock looks dead" in out


def test_two_schedulers_fill_a_schedule_slot_once(make_settings, engine, now):
    """Two schedulers on one database, the same cron: the second, firing after the first's pass
    of the slot ended, skips it (and names it) instead of collecting the same window again."""
    settings = make_settings('[collectors]\nsources = ["reference"]\n[collectors.reference]\ncron = "*/5 * * * *"\n' + OFF)
    start = now.replace(minute=1, second=0, microsecond=0)
    clock = {"t": start}
    a = Scheduler(engine, build_jobs(settings, engine), clock=lambda: clock["t"])
    b = Scheduler(engine, build_jobs(settings, engine), clock=lambda: clock["t"])
    clock["t"] = start + timedelta(minutes=4, seconds=5)
    assert [o.status for o in a.run_pending()] == ["ran"]
    clock["t"] = start + timedelta(minutes=4, seconds=40)
    [second] = b.run_pending()
    assert second.status == "skipped"
    assert second.detail.startswith(f"the {start + timedelta(minutes=4):%Y-%m-%d %H:%M} UTC pass of reference already ran")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(collector_runs.c.status, collector_runs.c.slot)).all()
    assert rows == [("succeeded", start + timedelta(minutes=4))]
    clock["t"] = start + timedelta(minutes=9, seconds=1)  # the next slot: one pass again
    assert [o.status for o in b.run_pending()] == ["ran"]
    assert [o.status for o in a.run_pending()] == ["skipped"]


def test_schedule_fills_pipelines_and_records_the_real_end_of_a_pass(make_settings, engine, now):
    settings = make_settings('[[pipelines]]\nname = "orders"\nsource = "reference"\nschedule = "0 * * * *"\n'
                             '[collectors]\nsources = ["reference"]\n[collectors.reference]\ncron = "* * * * *"\n' + OFF)
    clock = {"t": now}
    sched = Scheduler(engine, build_jobs(settings, engine), clock=lambda: clock["t"])
    clock["t"] = now + timedelta(minutes=1)
    [outcome] = sched.run_pending()
    assert outcome.status == "ran", outcome.detail
    with engine.connect() as conn:
        assert conn.execute(sa.select(pipelines.c.name, pipelines.c.schedule)).all() == [("orders", "0 * * * *")]
        started, ended = conn.execute(sa.select(collector_runs.c.started_at, collector_runs.c.ended_at)).one()
    # the end is the start plus the pass's own run time, not the start again
    assert timedelta(0) < ended - started <= timedelta(seconds=outcome.result.seconds)
