"""Database outages and dead lock owners: ``collect`` finishes the other sources and says what
failed in one line; the scheduler stays up through a real PostgreSQL outage and says since when
the database is unreachable; a lock left by a killed process is taken over."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from servers import free_port

import collectors.runner as runner
from cli.main import main
from jobs.scheduler import Scheduled, Scheduler
from pipepulse.cron import CronSchedule
from store.db import connect
from store.schema import collector_runs, locks, metadata, runs
from store.state import get_watermark, session_lock, set_watermark

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)


def _outage() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture
def two_sources(aws, db_url, tmp_path, monkeypatch, ledger):
    """reference (one ledger run) and glue (one job run); the config path."""
    ledger.run(run_id="r1", pipeline="orders", status="SUCCEEDED", trigger="schedule", attempt=1,
               started_at=T0.isoformat(), ended_at=(T0 + timedelta(minutes=5)).isoformat())
    glue = boto3.client("glue")
    glue.create_job(Name="j", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/j.py"})
    glue.start_job_run(JobName="j")
    config = tmp_path / "pipepulse.toml"
    config.write_text('[collectors]\nsources = ["reference", "glue"]\n')
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIPEPULSE_LOG_LEVEL", "ERROR")
    return config


@pytest.mark.parametrize("where", ["pass start", "storing"])
def test_collect_database_error_in_one_source_others_still_stored(two_sources, db_url, monkeypatch, capsys, where):
    """The first source meets a database error (before its pass, or while storing); the second
    still stores its run, the summary names the failure in one line, exit 1, no traceback."""
    if where == "pass start":
        real_start = runner.start_collector_run

        def start(engine, source, **kw):
            if source == "reference":
                raise _outage()
            return real_start(engine, source, **kw)

        monkeypatch.setattr(runner, "start_collector_run", start)
    else:
        real_persist = runner.persist

        def persist(conn, source, batch, **kw):
            if source == "reference":
                raise _outage()
            return real_persist(conn, source, batch, **kw)

        monkeypatch.setattr(runner, "persist", persist)

    assert main(["--config", str(two_sources), "collect"]) == 1
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0].startswith("reference      failed     rows        0")
    error = [x for x in lines if "error:" in x]
    assert len(error) == 1 and "database" in error[0] and "unreachable: server closed the connection unexpectedly" in error[0]
    assert "is the server running" in error[0]
    assert lines[2].startswith("glue           succeeded  rows        1")
    assert lines[-1].startswith("total")
    assert "Traceback" not in cap.out + cap.err
    engine = connect(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.source)).scalars().all() == ["glue"]
        assert conn.execute(sa.select(locks.c.name)).scalars().all() == []  # both locks released
    engine.dispose()


def test_collect_unreachable_database_one_line_exit_1(tmp_path, monkeypatch, capsys):
    config = tmp_path / "pipepulse.toml"
    config.write_text('[collectors]\nsources = ["reference"]\n')
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    monkeypatch.setenv("PIPEPULSE_LOG_LEVEL", "ERROR")
    assert main(["--config", str(config), "collect"]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert len(cap.err.splitlines()) == 1
    assert cap.err.startswith("pipepulse: error: cannot reach PostgreSQL at 127.0.0.1:1")
    assert "Traceback" not in cap.err


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process
    return proc.pid


def test_collect_takes_over_the_lock_of_a_dead_process(two_sources, db_url, capsys):
    engine = connect(db_url)
    host = socket.gethostname()
    since = datetime.now(UTC) - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(locks.insert().values(name="job:reference", owner=f"{host}:{_dead_pid()}:killed",
                                           acquired_at=since, expires_at=since + timedelta(hours=1)))
        conn.execute(locks.insert().values(name="job:glue", owner=f"{host}:{os.getpid()}:alive",
                                           acquired_at=since, expires_at=since + timedelta(hours=1)))
        conn.execute(collector_runs.insert().values(source="reference", started_at=since + timedelta(seconds=1), status="running"))

    # a live owner on PostgreSQL also holds the job's session advisory lock (a row alone, with no
    # session behind it, is a dead owner's there and taken over at once)
    with session_lock(engine, "job:glue"):
        assert main(["--config", str(two_sources), "collect"]) == 0
    out = capsys.readouterr().out
    assert f"glue           skipped: another pass of this source is running (pid {os.getpid()} on host {host} since " in out
    assert "reference      succeeded  rows        1" in out
    with engine.connect() as conn:
        passes = conn.execute(sa.select(collector_runs.c.source, collector_runs.c.status, collector_runs.c.error)
                              .order_by(collector_runs.c.collector_run_id)).all()
        assert [(p.source, p.status) for p in passes] == [("reference", "interrupted"), ("reference", "succeeded")]
        assert passes[0].error.startswith("interrupted: its process pid ")
        assert conn.execute(sa.select(locks.c.name)).scalars().all() == ["job:glue"]  # the live owner's stays
    engine.dispose()


# -- a private PostgreSQL, stopped and started under a running scheduler ----------------------

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


class PrivatePostgres:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.bin = PG_BIN[-1].parent
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
        subprocess.run(prefix + list(args), check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-o", opts, "-w", "-l", str(self.folder / "log"), "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")


@contextmanager
def running_private_postgres(prefix: str = "pp-pg-") -> Iterator[PrivatePostgres]:
    """A PostgreSQL of its own (own port and data folder), started; stopped and removed after."""
    if not PG_BIN:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    pg = PrivatePostgres(folder, free_port())
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg():
    with running_private_postgres() as pg:
        yield pg


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_scheduler_outlives_a_postgresql_outage(private_pg, caplog):
    engine = connect(private_pg.url)
    metadata.create_all(engine)
    written: list[datetime] = []

    def job(at: datetime) -> None:
        with engine.begin() as conn:
            set_watermark(conn, "probe", at.isoformat(), now=at)
        written.append(at)

    clock = Clock(datetime(2026, 11, 20, 12, 1, tzinfo=UTC))
    sched = Scheduler(engine, [Scheduled("probe", CronSchedule("*/5 * * * *"), job)], clock=clock, backoff_seconds=(30, 600))
    clock.now = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)
    assert [o.status for o in sched.run_pending()] == ["ran"]
    assert sched.health() == "ok"

    private_pg.stop()
    caplog.set_level(logging.WARNING, logger="jobs.scheduler")
    down = clock.now = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
    (outcome,) = sched.run_pending()  # no exception: the scheduler stays up
    assert (outcome.status, outcome.database_down) == ("failed", True)
    assert "unreachable" in outcome.detail and f":{private_pg.port}/postgres" in outcome.detail
    assert sched.health() == "database unreachable since 2026-11-20 12:10:00 UTC"
    assert sched.jobs[0].next_at == down + timedelta(seconds=30)  # backoff, before the cron's 12:15
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and not warnings[0].exc_info
    message = warnings[0].getMessage()
    assert "job probe failed: database" in message and "next try at 2026-11-20 12:10:30 UTC" in message
    assert "\n" not in message

    clock.now = down + timedelta(seconds=30)
    assert [o.status for o in sched.run_pending()] == ["failed"]
    assert sched.jobs[0].next_at == clock.now + timedelta(seconds=60)  # doubled
    assert sched.health() == "database unreachable since 2026-11-20 12:10:00 UTC"  # since the first failure

    private_pg.start()
    clock.now = sched.jobs[0].next_at
    assert [o.status for o in sched.run_pending()] == ["ran"]
    assert sched.health() == "ok"
    assert sched.jobs[0].next_at == datetime(2026, 11, 20, 12, 15, tzinfo=UTC)  # back on its cron
    with engine.connect() as conn:
        assert get_watermark(conn, "probe") == clock.now.isoformat()
    assert written == [datetime(2026, 11, 20, 12, 5, tzinfo=UTC), clock.now]
    engine.dispose()


def test_scheduler_thread_stays_up_while_postgresql_is_stopped(private_pg):
    """``run_forever`` in a thread on the real clock: PostgreSQL stopped, the loop keeps trying
    with backoff; started again, the job runs and the health clears."""
    engine = connect(private_pg.url)
    metadata.create_all(engine)

    def job(at: datetime) -> None:
        with engine.begin() as conn:
            set_watermark(conn, "probe", at.isoformat(), now=at)

    sched = Scheduler(engine, [Scheduled("probe", CronSchedule("0 0 1 1 *"), job)], backoff_seconds=(0.1, 0.4))
    sched.jobs[0].next_at = datetime.now(UTC)  # due at once
    private_pg.stop()
    thread = threading.Thread(target=sched.run_forever, kwargs={"wait": lambda s: sched.stopping.wait(min(s, 0.05))})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while sum(o.database_down for o in sched.outcomes) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(o.database_down for o in sched.outcomes) >= 3  # retried, backing off
        assert thread.is_alive()
        assert sched.health().startswith("database unreachable since ")
        private_pg.start()
        while not any(o.status == "ran" for o in sched.outcomes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sched.outcomes[-1].status == "ran"
        assert sched.health() == "ok"
        assert thread.is_alive()
    finally:
        sched.stop()
        thread.join(10)
    assert not thread.is_alive()
    engine.dispose()
