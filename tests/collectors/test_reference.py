from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from collectors.runner import collect
from store.schema import collector_runs, run_daily, run_steps, runs, watermarks


def _run(ledger, rid, status, start, minutes, **kw):
    ledger.run(
        run_id=rid, pipeline="orders", status=status, trigger="schedule", attempt=1,
        scheduled_for=start.isoformat(), queued_at=(start - timedelta(seconds=30)).isoformat(),
        started_at=start.isoformat(),
        ended_at=(start + timedelta(minutes=minutes)).isoformat() if status != "RUNNING" else None,
        records_in=100, records_out=90, records_rejected=10, bytes_in=1000,
        correlation_id=f"c-{rid}", cost_usd=0.5, **kw,
    )


def test_ledger_incremental_and_rollup(make_settings, engine, ledger, now):
    settings = make_settings('[collectors]\nsources = ["reference"]\n')
    t0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)
    _run(ledger, "r1", "SUCCEEDED", t0, 10)
    ledger.step(run_id="r1", stage="extract", attempt=1, status="FAILED", started_at=t0.isoformat(),
                ended_at=(t0 + timedelta(minutes=1)).isoformat(), error_type="Timeout", error_message="slow")
    ledger.step(run_id="r1", stage="extract", attempt=2, status="SUCCEEDED",
                started_at=(t0 + timedelta(minutes=2)).isoformat(),
                ended_at=(t0 + timedelta(minutes=5)).isoformat(), records_in=100, records_out=100)
    _run(ledger, "r2", "FAILED", t0 + timedelta(hours=1), 20, error_type="ValueError", error_message="bad row")
    _run(ledger, "r3", "RUNNING", t0 + timedelta(hours=2), 0)

    [first] = collect(settings, engine, now=now)
    assert (first.status, first.rows_written, first.api_calls) == ("succeeded", 5, 0)
    with engine.connect() as conn:
        got = conn.execute(sa.select(runs.c.run_id, runs.c.status, runs.c.duration_seconds, runs.c.retries,
                                     runs.c.error_message, runs.c.started_at).order_by(runs.c.run_id)).all()
        assert got == [
            ("reference:r1", "SUCCEEDED", 600.0, 1, None, t0),
            ("reference:r2", "FAILED", 1200.0, 0, "bad row", t0 + timedelta(hours=1)),
            ("reference:r3", "RUNNING", None, 0, None, t0 + timedelta(hours=2)),
        ]
        steps = conn.execute(sa.select(run_steps.c.stage, run_steps.c.attempt, run_steps.c.status,
                                       run_steps.c.duration_seconds).order_by(run_steps.c.attempt)).all()
        assert steps == [("extract", 1, "FAILED", 60.0), ("extract", 2, "SUCCEEDED", 180.0)]
        assert conn.execute(sa.select(watermarks.c.value).where(watermarks.c.source == "reference")).scalar_one() == "5"
        day = conn.execute(sa.select(run_daily)).mappings().one()
        assert (day["day"], day["runs"], day["succeeded"], day["failed"], day["retries"]) == (date(2026, 11, 19), 3, 1, 1, 1)
        assert (day["duration_p50"], day["duration_p95"], day["duration_max"]) == (900.0, 1170.0, 1200.0)
        assert (day["queue_seconds_sum"], day["records_in"], day["cost_usd"], day["failed_cost_usd"]) == (90.0, 300, 1.5, 0.5)

    # Second pass, nothing new: nothing stored, watermark unchanged.
    [second] = collect(settings, engine, now=now + timedelta(minutes=5))
    assert (second.status, second.rows_written) == ("succeeded", 0)

    # r3 finishes: only that change is read.
    _run(ledger, "r3", "SUCCEEDED", t0 + timedelta(hours=2), 4)
    [third] = collect(settings, engine, now=now + timedelta(minutes=10))
    assert third.rows_written == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.status).where(runs.c.run_id == "reference:r3")).scalar_one() == "SUCCEEDED"
        assert conn.execute(sa.select(run_daily.c.succeeded)).scalar_one() == 2
        passes = conn.execute(sa.select(collector_runs.c.status, collector_runs.c.rows_written)
                              .order_by(collector_runs.c.collector_run_id)).all()
        assert passes == [("succeeded", 5), ("succeeded", 0), ("succeeded", 1)]


def test_missing_ledger_is_an_empty_pass(make_settings, engine, now):
    settings = make_settings('[collectors]\nsources = ["reference"]\n')
    [result] = collect(settings, engine, now=now)
    assert (result.status, result.rows_written) == ("succeeded", 0)
