"""The fault table of issue 23, as tests: each row seeds the local AWS with several pages per
listing (``faultbed.seed``), injects its fault over HTTP, lets the fault clear, runs ``collect``
twice more, and then counts against the source: expected == stored, 0 doubled, 0 lost, no lock
held, no pass left ``running``. Each row is printed in a table at the end of the session
(``conftest.py``), also in CI.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW
from faultbed import (
    CONFIG,
    LOG_GROUP,
    Counts,
    LogSource,
    account,
    account_costs,
    account_logs,
    cur_cells,
    leftovers,
    record_row,
    seed,
)

from collectors.runner import collect
from devkit.localaws.faults import FaultInjector
from pipepulse import retries
from store.db import connect, upgrade
from store.schema import collector_runs

pytestmark = pytest.mark.aws_clock  # CloudWatch points must be near AWS's clock
ROOT = Path(__file__).resolve().parents[2]
SEED = 23
TEST_DBS = [d.strip() for d in os.environ.get("PIPEPULSE_TEST_DBS", "sqlite").split(",") if d.strip()]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(retries, "AWS_REQUESTS", retries.Backoff(base=0.0, cap=0.0))


@pytest.fixture(scope="module")
def focus_lines(shared_dir) -> list[str]:
    return (shared_dir / "data" / "cost" / "focus-1.0-sample" / "focus_sample.csv").read_text().splitlines()


class Bed:
    """The seeded source, the settings, the database and the pass clock of one row."""

    def __init__(self, aws, src, settings, engine, db_url) -> None:
        self.aws, self.src, self.settings, self.engine, self.db_url = aws, src, settings, engine, db_url
        self.faults = aws.app(FaultInjector)
        self.faults.reset()
        self.minute = 0

    @property
    def db(self) -> str:
        return "postgresql" if self.db_url.startswith("postgresql") else "sqlite"

    def collect(self, **kw):
        self.minute += 1
        return collect(self.settings, self.engine, now=self.src.now + timedelta(minutes=self.minute), **kw)

    def settle(self, passes: int = 2) -> Counts:
        """The fault has cleared: ``collect`` ``passes`` times more, then count."""
        self.faults.reset()
        for _ in range(passes):
            for p in self.collect():
                assert p.status == "succeeded", f"{p.source}: {p.error}"
        return account(self.engine, self.src)

    def check(self, request, order: int, fault: str, counts: Counts, note: str = "") -> None:
        record_row(request, order, fault, self.db, counts, note)
        held, running = leftovers(self.engine)
        assert counts.exact, f"{fault}: expected {counts.expected}, stored {counts.stored}, doubled {counts.doubled}, lost {counts.lost}: {counts.problems}"
        assert held == [], f"locks still held: {held}"
        assert running == [], f"passes left running: {running}"


@pytest.fixture
def bed(aws, make_settings, engine, db_url, focus_lines):
    src = seed(aws, AWS_NOW, focus_lines)
    return Bed(aws, src, make_settings(CONFIG), engine, db_url)


def test_clean_passes_store_the_source_exactly(bed, request):
    first = bed.collect()
    assert [p.status for p in first] == ["succeeded"] * 5, [p.error for p in first]
    bed.src.finish(bed.aws)
    bed.check(request, 0, "no fault (baseline)", bed.settle())


@pytest.mark.same_clock_as_baseline
def test_throttling_5xx_on_page_two_on_and_slow_answers(bed, request):
    f = bed.faults
    transient = [
        f.add(service="states", operation="ListExecutions", code="ThrottlingException", after=1, times=3),
        f.add(service="glue", operation="GetJobRuns", code="InternalServiceException", status=500, after=1, times=3),
        f.add(service="ce", operation="GetCostAndUsage", code="ServiceUnavailable", status=503, after=1, times=3),
        f.add(service="states", operation="GetExecutionHistory", code="ThrottlingException", status=400, after=5, times=3),
        f.add(service="monitoring", operation="GetMetricData", code="Throttling", status=400, times=2),
        f.add(service="s3", operation="GET /exports", code="SlowDown", status=503, after=1, times=2),
    ]
    first = bed.collect()
    assert all(p.status == "succeeded" for p in first), [p.error for p in first]  # retried within the pass
    assert all(r.hits == r.times for r in transient)
    # persistent: every listing page fails until the fault clears (a second pass stops paging at
    # its watermark on page 1, so the fault starts there); the passes fail whole
    f.reset()
    persistent = [
        f.add(service="states", operation="ListExecutions", code="ThrottlingException", times=-1),
        f.add(service="glue", operation="GetJobRuns", code="InternalServiceException", status=500, times=-1),
        f.add(service="ce", operation="GetCostAndUsage", code="InternalServerError", status=500, times=-1),
    ]
    bed.src.finish(bed.aws, bed.src.running()[:5])
    failed = {p.source: p.status for p in bed.collect()}
    assert failed["stepfunctions"] == failed["glue"] == failed["ce"] == "failed"
    hits = sum(r.hits for r in transient + persistent)
    bed.src.finish(bed.aws)
    bed.check(request, 1, "throttling, 5xx on page 2+ (transient and persistent)", bed.settle(), f"{hits} faulted answers")


@pytest.mark.same_clock_as_baseline
def test_slow_answers_are_retried(bed, request, make_settings):
    bed.settings = make_settings(CONFIG.replace("[collectors]\n", "[collectors]\nread_timeout_seconds = 1\n", 1))
    rule = bed.faults.add(service="glue", operation="GetJobRuns", code=None, delay_seconds=2.5, after=1, times=1)
    passes = {p.source: p for p in bed.collect()}
    assert passes["glue"].status == "succeeded", passes["glue"].error
    assert rule.hits == 1 and sum(passes["glue"].retries.values()) >= 1
    bed.src.finish(bed.aws)
    bed.check(request, 2, "slow answer (read timeout, retried)", bed.settle(), "1 slow answer")


@pytest.mark.same_clock_as_baseline
@pytest.mark.parametrize("body", ["truncated", "malformed"])
def test_bad_200_bodies(bed, request, body):
    f = bed.faults
    rules = [
        f.add(service="states", operation="ListExecutions", code=None, body=body, after=1, times=-1),
        f.add(service="states", operation="GetExecutionHistory", code=None, body=body, after=7, times=-1),
        f.add(service="glue", operation="GetJobRuns", code=None, body=body, after=1, times=-1),
        f.add(service="monitoring", operation="GetMetricData", code=None, body=body, times=-1),
        f.add(service="ce", operation="GetCostAndUsage", code=None, body=body, after=1, times=-1),
        f.add(service="s3", operation="GET /exports", code=None, body=body, after=1, times=-1),
    ]
    first = {p.source: p for p in bed.collect()}
    failed = sorted(s for s, p in first.items() if p.status == "failed")
    # a bad answer fails the pass (watermark kept); which sources meet one depends on paging
    assert {"ce", "cloudwatch", "stepfunctions"} <= set(failed), {s: (p.error, p.calls) for s, p in first.items()}
    answers = sum(r.hits for r in rules)
    bed.src.finish(bed.aws)
    bed.check(request, 3 if body == "truncated" else 4, f"{body} 200 body", bed.settle(),
              f"{answers} bad answers, failed: {', '.join(failed)}")


@pytest.mark.same_clock_as_baseline
def test_one_bad_cloudwatch_answer_and_one_cut_history(bed, request):
    f = bed.faults
    cw = f.add(service="monitoring", operation="GetMetricData", code=None, body="truncated", times=1)
    history = f.add(service="states", operation="GetExecutionHistory", code=None, body="truncated", after=11, times=1)
    first = {p.source: p for p in bed.collect()}
    assert cw.hits == 1 and history.hits == 1
    bed.src.finish(bed.aws)
    bed.check(request, 5, "one bad CloudWatch answer / one cut execution history", bed.settle(),
              f"first pass: cloudwatch {first['cloudwatch'].status}, stepfunctions {first['stepfunctions'].status}")


@pytest.mark.same_clock_as_baseline
def test_runs_finishing_during_a_pass(bed, request):
    """Executions end (their histories gain ExecutionSucceeded) while a pass is between its
    ListExecutions pages and its history reads; the next passes store their ends and steps."""
    running = bed.src.running()
    gate = bed.faults.add(service="states", operation="GetExecutionHistory", code=None, delay_seconds=1.0, times=1)
    finisher = threading.Timer(0.3, lambda: bed.src.finish(bed.aws, running[: len(running) // 2]))
    finisher.start()
    try:
        first = {p.source: p for p in bed.collect()}
    finally:
        finisher.join()
    assert first["stepfunctions"].status == "succeeded" and gate.hits == 1
    mid = account(bed.engine, bed.src)
    bed.src.finish(bed.aws)
    bed.check(request, 6, "runs finishing during a pass", bed.settle(),
              f"{len(running)} running at the start; {mid.lost} stale right after that pass")


def test_passes_overlapping_the_logs_collector(aws, ledger, make_settings, engine, db_url, request, monkeypatch):
    """The race of issue 23: a run source's pass that started before the logs collector's pass
    commits its failed runs after that logs pass ran, with an ``updated_at`` (its start) older than
    the runs the logs pass read from a quicker pass. Three rounds of a quick reference pass, then a
    slow one held (in its own thread) after reading the ledger while the logs pass runs, then let
    go; then ``collect`` twice more. Every failed run's ERROR/WARNING events must be stored once."""
    from collectors.reference import ReferenceCollector

    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    src = LogSource(start=AWS_NOW.replace(microsecond=0) - timedelta(hours=3))
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n')
    held, release = threading.Event(), threading.Event()
    read_ledger = ReferenceCollector.collect

    def slow_collect(self, ctx):
        batch = read_ledger(self, ctx)
        if threading.current_thread().name == "slow-pass":
            held.set()
            assert release.wait(60), "the slow pass was never let go"
        return batch

    monkeypatch.setattr(ReferenceCollector, "collect", slow_collect)
    clock = AWS_NOW

    def at(minutes: float):
        return clock + timedelta(minutes=minutes)

    overlaps, slow_runs = [], 0
    for r, (quick, slow) in enumerate([(10, 10), (10, 9), (10, 9)]):
        base = 10 * r
        src.put(ledger, logs, f"q{r}", quick)
        [p] = collect(settings, engine, sources=["reference"], now=at(base + 2))  # the quick pass
        assert p.status == "succeeded", p.error
        slow_runs += len(src.put(ledger, logs, f"s{r}", slow))
        held.clear()
        release.clear()
        outcome: list = []
        thread = threading.Thread(name="slow-pass", target=lambda m=base + 1, out=outcome: out.extend(
            collect(settings, engine, sources=["reference"], now=at(m))))  # started a minute before the quick one
        thread.start()
        try:
            assert held.wait(60), "the slow pass never read the ledger"
            [lp] = collect(settings, engine, sources=["logs"], now=at(base + 3))  # runs while the slow pass is held
            assert lp.status == "succeeded", lp.error
            with engine.connect() as conn:
                running = conn.execute(sa.select(collector_runs.c.source).where(collector_runs.c.status == "running")).scalars().all()
            overlaps.append(running)
        finally:
            release.set()
            thread.join(60)
        assert [p.status for p in outcome] == ["succeeded"], [p.error for p in outcome]
    assert overlaps == [["reference"]] * 3, overlaps  # each logs pass ran inside a held reference pass
    mid = account_logs(engine, src.lines)
    for m in (40, 41):  # the passes have cleared: collect twice more
        for p in collect(settings, engine, now=at(m)):
            assert p.status == "succeeded", f"{p.source}: {p.error}"
    counts = account_logs(engine, src.lines)
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    record_row(request, 12, "passes overlapping the logs collector", db, counts,
               f"{src.runs} ledger runs, {len(src.lines) // 3} failed ({slow_runs} committed by a slow pass after a logs pass); "
               f"{mid.lost} lines unread right after the overlaps")
    assert counts.exact, f"expected {counts.expected}, stored {counts.stored}, doubled {counts.doubled}, lost {counts.lost}: {counts.problems}"
    assert leftovers(engine) == ([], [])


# ---- kill -9 and database restarts: `pipepulse collect` / `costs import` as real processes -------

PROCESS_KINDS = ("runs", "steps", "focus")  # the wall-clock sources (CloudWatch and CE need the test's clock)
PROCESS_CONFIG = '[collectors]\nsources = ["stepfunctions", "glue", "focus"]\n[collectors.stepfunctions]\nhistory_page_size = 4\n' \
                 '[collectors.focus]\npaths = ["s3://exports/focus/"]\n'


def _cli(config: Path, *args: str, db_url: str, data: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PIPEPULSE_DATABASE_URL=db_url, PIPEPULSE_DATA_DIR=str(data),
               PIPEPULSE_LOG_LEVEL="ERROR")
    return subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), *args], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, what: str) -> str:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, f"{what}: rc {proc.returncode}\n{out}"
    assert "Traceback" not in out
    return out


def _duration(config: Path, *args: str, data: Path) -> float:
    """Seconds one whole run of the command takes here, against a scratch SQLite database (so the
    kill moments fall inside a run on a fast machine as on a slow one)."""
    scratch = data.parent / "scratch.db"
    engine = connect(f"sqlite:///{scratch}")
    upgrade(engine)
    engine.dispose()
    t0 = time.monotonic()
    _finish(_cli(config, *args, db_url=f"sqlite:///{scratch}", data=data.parent / "scratch-data"), "the timing run")
    return time.monotonic() - t0


def _a_pass_runs(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(collector_runs).where(collector_runs.c.status == "running")).scalar_one() > 0


def _kill_at(proc: subprocess.Popen, seconds: float) -> bool:
    """kill -9 after ``seconds``; False when the process had already ended."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True


@pytest.mark.same_clock_as_baseline
def test_kill_9_of_collect_at_seeded_moments(bed, request, tmp_path):
    bed.src.kinds = PROCESS_KINDS
    config = tmp_path / "process.toml"
    config.write_text(PROCESS_CONFIG)
    rng = random.Random(SEED)
    whole = _duration(config, "collect", data=tmp_path / "data")
    killed = []
    for k in range(4):
        proc = _cli(config, "collect", db_url=bed.db_url, data=tmp_path / "data")
        t0 = time.monotonic()
        if k % 2:  # a seeded moment of the run
            at = rng.uniform(0.2, 0.95) * whole
        else:  # a seeded moment after a pass is seen running (its lock held, its rows not yet committed)
            extra = rng.uniform(0.0, 0.5)
            while proc.poll() is None and not _a_pass_runs(bed.engine) and time.monotonic() - t0 < 60:
                time.sleep(0.02)
            at = time.monotonic() - t0 + extra
        if _kill_at(proc, max(at - (time.monotonic() - t0), 0.0)):
            killed.append(f"{at:.1f}s")
        if len(killed) == 2:
            bed.src.finish(bed.aws)  # the runs end between kills
    assert killed, f"no kill landed inside a run of {whole:.1f}s"
    bed.src.finish(bed.aws)
    for _ in range(2):
        _finish(_cli(config, "collect", db_url=bed.db_url, data=tmp_path / "data"), "collect after the kills")
    with bed.engine.connect() as conn:
        interrupted = conn.execute(sa.select(sa.func.count()).select_from(collector_runs)
                                   .where(collector_runs.c.status == "interrupted")).scalar_one()
    bed.check(request, 7, "kill -9 of `collect`", account(bed.engine, bed.src),
              f"{len(killed)} kills at {', '.join(killed)} of a {whole:.1f}s run; {interrupted} passes marked interrupted")


@pytest.fixture(scope="module")
def cur_table(shared_dir):
    path = shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"
    return pq.ParquetFile(path).read_row_group(0).slice(0, 20_000)


@pytest.mark.same_clock_as_baseline
def test_kill_9_of_a_cur_costs_import(engine, db_url, request, tmp_path, cur_table):
    path = tmp_path / "cur" / "cur-00001.parquet"
    path.parent.mkdir()
    pq.write_table(cur_table, path, row_group_size=2_000)
    config = tmp_path / "import.toml"
    config.write_text("")
    rng = random.Random(SEED + 1)
    whole = _duration(config, "costs", "import", str(path), data=tmp_path / "data")
    killed = []
    for _ in range(4):
        at = rng.uniform(0.2, 0.95) * whole
        if _kill_at(_cli(config, "costs", "import", str(path), db_url=db_url, data=tmp_path / "data"), at):
            killed.append(f"{at:.1f}s")
    assert killed, f"no kill landed inside a run of {whole:.1f}s"
    for _ in range(2):
        _finish(_cli(config, "costs", "import", str(path), db_url=db_url, data=tmp_path / "data"), "import after the kills")
    counts = account_costs(engine, cur_cells(cur_table), ("cur",))
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    record_row(request, 8, "kill -9 of a CUR `costs import`", db, counts, f"{len(killed)} kills at {', '.join(killed)} of a {whole:.1f}s run")
    assert counts.exact, counts.problems
    assert leftovers(engine) == ([], [])


@pytest.fixture(scope="module")
def private_pg():
    if "postgresql" not in TEST_DBS:
        pytest.skip("PostgreSQL restarts run when PIPEPULSE_TEST_DBS names postgresql (SQLite has no server to restart)")
    from test_outages import running_private_postgres

    with running_private_postgres("pp-pg-table-") as pg:
        yield pg


@pytest.mark.same_clock_as_baseline
def test_postgresql_restarted_during_collect(aws, private_pg, request, tmp_path, focus_lines):
    src = seed(aws, AWS_NOW, focus_lines)
    src.kinds = PROCESS_KINDS
    engine = connect(private_pg.url)
    upgrade(engine)
    config = tmp_path / "process.toml"
    config.write_text(PROCESS_CONFIG)
    rng = random.Random(SEED + 2)
    outcomes = []
    try:
        for trial in range(3):
            proc = _cli(config, "collect", db_url=private_pg.url, data=tmp_path / "data")
            at = rng.uniform(1.0, 5.0)
            time.sleep(at)
            private_pg.stop()
            time.sleep(1.0)
            private_pg.start()
            out, _ = proc.communicate(timeout=240)
            assert "Traceback" not in out, out
            outcomes.append(f"rc {proc.returncode} at {at:.1f}s")
            if trial == 1:
                src.finish(aws)
        src.finish(aws)
        for _ in range(2):
            _finish(_cli(config, "collect", db_url=private_pg.url, data=tmp_path / "data"), "collect after the restarts")
        counts = account(engine, src)
        record_row(request, 9, "PostgreSQL restarted during `collect`", "postgresql (private)", counts, "; ".join(outcomes))
        assert counts.exact, counts.problems
        assert leftovers(engine) == ([], [])
    finally:
        engine.dispose()


@pytest.mark.same_clock_as_baseline
def test_two_schedulers_on_one_database(bed, request, db_url):
    from jobs.scheduler import Scheduler, _per_source

    engines = [connect(db_url), connect(db_url)]
    clock_at = [bed.src.now]
    scheds = [Scheduler(e, _per_source(bed.settings, e, None), clock=lambda: clock_at[0])  # owners host:pid:uuid
              for e in engines]
    outcomes: list = []
    try:
        for slot in range(3):
            clock_at[0] = bed.src.now + timedelta(minutes=5 * slot + 1)
            for s in scheds:
                for job in s.jobs:
                    job.next_at = clock_at[0]  # every source due in both schedulers at once
            threads = [threading.Thread(target=lambda s=s: outcomes.extend(s.run_pending())) for s in scheds]
            for t in threads:
                t.start()
            for t in threads:
                t.join(240)
            if slot == 0:
                bed.src.finish(bed.aws)
    finally:
        for e in engines:
            e.dispose()
    failed = [o for o in outcomes if o.status == "failed"]
    assert not failed, [(o.job, o.detail) for o in failed]
    ran = Counter(o.status for o in outcomes)
    counts = account(bed.engine, bed.src)
    bed.check(request, 10, "two schedulers on one database", counts, f"{ran['ran']} passes ran, {ran['skipped']} skipped (lock held)")


# ---- the import cases ----------------------------------------------------------------------------


@pytest.mark.same_clock_as_baseline
@pytest.mark.parametrize("case", ["same file twice", "overlapping prefixes", "duplicate line items"])
def test_import_cases(aws, engine, db_url, request, tmp_path, cur_table, focus_lines, make_settings, case):
    from jobs.import_costs import import_cost_files

    table = cur_table.slice(0, 5_000)
    folder = tmp_path / "exports"
    folder.mkdir()
    if case == "same file twice":
        path = folder / "cur.parquet"
        pq.write_table(table, path)
        result = import_cost_files(engine, [str(folder), str(path), str(path)], tag_key="workload", now=AWS_NOW)
        counts, note = account_costs(engine, cur_cells(table), ("cur",)), f"{len(result.notes)} notes"
    elif case == "duplicate line items":
        import pyarrow as pa

        path = folder / "cur.parquet"
        pq.write_table(pa.concat_tables([table, table]), path)
        result = import_cost_files(engine, [str(path)], tag_key="workload", now=AWS_NOW)
        counts = account_costs(engine, cur_cells(table), ("cur",))
        note = f"{result.rows_read:,} rows read, {result.duplicates:,} repeated line items counted once"
    else:
        import boto3
        from faultbed import FOCUS_KEY, FOCUS_LINES, focus_cells

        body = ("\n".join(focus_lines[: FOCUS_LINES + 1]) + "\n").encode()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="exports")
        s3.put_object(Bucket="exports", Key=FOCUS_KEY, Body=body)
        import_cost_files(engine, ["s3://exports/focus/", "s3://exports/focus/demo/data/"], tag_key="pipeline", now=AWS_NOW, s3_client=s3)
        first = account_costs(engine, focus_cells(body), ("focus",))
        assert first.exact, first.problems
        settings = make_settings('[collectors]\nsources = ["focus"]\n[collectors.focus]\npaths = ["s3://exports/focus/", "s3://exports/focus/demo/"]\n')
        [run] = collect(settings, engine, now=AWS_NOW)
        assert run.status == "succeeded", run.error
        counts, note = account_costs(engine, focus_cells(body), ("focus",)), "costs import and the focus collector"
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    record_row(request, 11, f"import: {case}", db, counts, note)
    assert counts.exact, counts.problems
    assert leftovers(engine) == ([], [])
