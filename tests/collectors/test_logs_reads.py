"""The logs collector is keyed on what it has read, never on when another pass stored a run:
a run committed by a slow pass (its ``updated_at`` older than the logs pass that ran before the
commit) is still read, recently ended runs are read again without storing a line twice."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW

from collectors.runner import collect
from store.schema import log_reads, run_logs, runs
from store.writes import upsert

pytestmark = pytest.mark.aws_clock
T0 = AWS_NOW - timedelta(hours=35)
GROUP = "/pipepulse/reference/orders"
STREAM = f"{T0:%Y/%m/%d}/s"


def _event(minute, cid, level, message):
    return {"timestamp": int((T0 + timedelta(minutes=minute)).timestamp() * 1000),
            "message": json.dumps({"correlation_id": cid, "stage": "load", "level": level, "message": message})}


def _store_run(engine, rid, *, updated_at, ended_minute=10):
    """A failed run as a run source's pass that started at ``updated_at`` stores it."""
    with engine.begin() as conn:
        upsert(conn, runs, [{"run_id": f"reference:{rid}", "pipeline": "orders", "source": "reference", "status": "FAILED",
                             "started_at": T0, "ended_at": T0 + timedelta(minutes=ended_minute), "correlation_id": f"c-{rid}"}],
               now=updated_at)


def _lines(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(run_logs.c.run_id, run_logs.c.message)).all())


@pytest.fixture
def group(aws):
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=[
        _event(1, "c-fast", "ERROR", "fast failed"), _event(2, "c-slow", "ERROR", "slow failed"),
        _event(3, "c-slow", "WARNING", "slow warned")])
    return logs


def test_a_run_stored_by_a_slow_pass_after_the_logs_pass_is_not_lost(group, make_settings, engine, now):
    settings = make_settings('[collectors]\nsources = ["logs"]\n')
    slow_pass_started = now - timedelta(minutes=10)
    _store_run(engine, "fast", updated_at=now)  # a quick pass stored this one at `now`
    first = collect(settings, engine, now=now + timedelta(minutes=1))
    assert first[0].status == "succeeded", first[0].error
    assert _lines(engine) == [("reference:fast", "fast failed")]
    # the slow pass, started 10 minutes before, commits its run only now: its updated_at is older
    # than anything the logs pass saw (the old watermark on updated_at skipped it for good)
    _store_run(engine, "slow", updated_at=slow_pass_started)
    second = collect(settings, engine, now=now + timedelta(minutes=2))
    assert second[0].status == "succeeded", second[0].error
    assert _lines(engine) == [("reference:fast", "fast failed"), ("reference:slow", "slow failed"),
                              ("reference:slow", "slow warned")]
    third = collect(settings, engine, now=now + timedelta(minutes=3))
    assert (third[0].rows_written, third[0].api_calls) == (0, 0)  # both read, long ended: nothing again


def test_a_recently_ended_run_is_read_again_without_doubling_its_lines(group, make_settings, engine):
    settings = make_settings('[collectors]\nsources = ["logs"]\n[collectors.logs]\nreread_minutes = 15\n')
    ended = T0 + timedelta(minutes=10)
    _store_run(engine, "slow", updated_at=ended)
    passes = [collect(settings, engine, now=ended + timedelta(minutes=m))[0] for m in (1, 6, 16, 21)]
    assert [p.status for p in passes] == ["succeeded"] * 4, [p.error for p in passes]
    # read at +1 and +6 (inside the window, late events may come), once more at +16 (closes it), then never
    assert [p.calls.get("logs:FilterLogEvents", 0) for p in passes] == [1, 1, 1, 0]
    assert _lines(engine) == [("reference:slow", "slow failed"), ("reference:slow", "slow warned")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(log_reads.c.run_id, log_reads.c.complete)).all() == [("reference:slow", True)]


def test_a_run_whose_end_changed_is_read_again(group, make_settings, engine, now):
    settings = make_settings('[collectors]\nsources = ["logs"]\n')
    _store_run(engine, "slow", updated_at=now)
    assert collect(settings, engine, now=now)[0].calls.get("logs:FilterLogEvents") == 1
    assert collect(settings, engine, now=now + timedelta(minutes=1))[0].api_calls == 0
    _store_run(engine, "slow", updated_at=now - timedelta(hours=1), ended_minute=12)  # redriven, failed again
    again = collect(settings, engine, now=now + timedelta(minutes=2))[0]
    assert again.calls.get("logs:FilterLogEvents") == 1
    assert len(_lines(engine)) == 2
