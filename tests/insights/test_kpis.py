from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from insights.kpis import ALL, compare, kpis, time_to_recover, window_kpis

T0 = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)


def run(pipeline, status, start_min, dur_s, *, queue_s=0, rin=1000, rout=990, rej=10, retries=0, attempt=1, cost=0.5):
    started = T0 + timedelta(minutes=start_min)
    return {
        "run_id": f"reference:{pipeline}-{start_min}",
        "pipeline": pipeline,
        "status": status,
        "attempt": attempt,
        "queued_at": started - timedelta(seconds=queue_s),
        "started_at": started,
        "ended_at": started + timedelta(seconds=dur_s) if status != "RUNNING" else None,
        "duration_seconds": float(dur_s) if status != "RUNNING" else None,
        "records_in": rin,
        "records_out": rout,
        "records_rejected": rej,
        "retries": retries,
        "cost_usd": cost,
    }


@pytest.fixture
def runs():
    rows = [
        # previous window (18 Nov): 2 runs, both fine
        run("orders", "SUCCEEDED", -600, 100),
        run("orders", "SUCCEEDED", -300, 100),
        # current window (19 Nov)
        run("orders", "SUCCEEDED", 0, 60, queue_s=10),
        run("orders", "FAILED", 60, 120, queue_s=20, rout=0, retries=2),
        run("orders", "FAILED", 120, 30, queue_s=30, rout=0, attempt=2),
        run("orders", "SUCCEEDED", 180, 90, queue_s=40, rin=2000, rout=1980, rej=20),
        run("orders", "RUNNING", 240, 0),
        run("clicks", "SUCCEEDED", 0, 300, rin=10_000, rout=9_000, rej=1_000),
    ]
    return pd.DataFrame(rows)


def test_window_kpis_exact(runs):
    k = window_kpis(runs, start=T0, end=T0 + timedelta(days=1))
    o = k.loc["orders"]
    assert o["runs"] == 5 and o["finished"] == 4 and o["succeeded"] == 2 and o["failed"] == 2
    assert o["success_rate"] == 0.5 and o["error_rate"] == 0.5
    # durations 30, 60, 90, 120: numpy linear percentiles
    assert o["duration_p50"] == 75.0
    assert o["duration_p95"] == pytest.approx(115.5)
    assert o["duration_max"] == 120.0
    # queue times 10, 20, 30, 40 and 0 (the running run)
    assert o["queue_p50"] == 20.0 and o["queue_mean"] == 20.0
    # succeeded runs: 990 + 1980 records in 60 + 90 s = 2.5 min
    assert o["records_per_minute"] == pytest.approx(2970 / 2.5)
    assert o["records_per_run"] == 1485.0
    assert o["rejected_rate"] == pytest.approx(50 / 5000)
    assert o["retries"] == 2 and o["retried_runs"] == 1
    # the failure streak starts at 01:00 (ends 01:02) and recovers at 03:00 + 90 s
    assert o["recoveries"] == 1
    assert o["mttr_seconds"] == (timedelta(hours=3, seconds=90) - timedelta(hours=1, seconds=120)).total_seconds()
    a = k.loc[ALL]
    assert a["runs"] == 6 and a["finished"] == 5 and a["success_rate"] == 0.6
    assert a["duration_max"] == 300.0
    assert a["rejected_rate"] == pytest.approx(1050 / 15000)


def test_change_against_previous_window(runs):
    out = kpis(runs, start=T0, end=T0 + timedelta(days=1)).set_index(["pipeline", "metric"])
    sr = out.loc[("orders", "success_rate")]
    assert sr["value"] == 0.5 and sr["previous"] == 1.0 and sr["change"] == -0.5 and sr["change_pct"] == -0.5
    runs_row = out.loc[("orders", "runs")]
    assert (runs_row["value"], runs_row["previous"], runs_row["change"], runs_row["change_pct"]) == (5, 2, 3, 1.5)
    p50 = out.loc[("orders", "duration_p50")]
    assert p50["previous"] == 100.0 and p50["change"] == -25.0 and bool(p50["higher_is_worse"])
    # clicks had no runs the day before: no previous, no change
    c = out.loc[("clicks", "runs")]
    assert c["value"] == 1 and pd.isna(c["previous"]) and pd.isna(c["change"])


def test_time_to_recover_open_streak():
    rows = [
        run("orders", "SUCCEEDED", 0, 60),
        run("orders", "FAILED", 60, 60),
        run("orders", "TIMED_OUT", 120, 60),
    ]
    ttr = time_to_recover(pd.DataFrame(rows))
    assert len(ttr) == 1
    assert ttr.loc[0, "failures"] == 2
    assert ttr.loc[0, "failed_at"] == T0 + timedelta(minutes=61)
    assert pd.isna(ttr.loc[0, "recovered_at"])
    k = window_kpis(pd.DataFrame(rows), start=T0, end=T0 + timedelta(days=1))
    assert k.loc["orders", "recoveries"] == 0
    assert k.loc["orders", "failing_since"] == T0 + timedelta(minutes=61)


def test_compare_handles_zero_previous():
    cur = window_kpis(pd.DataFrame([run("a", "FAILED", 0, 10)]), start=T0, end=T0 + timedelta(hours=1))
    prev = window_kpis(pd.DataFrame([run("a", "SUCCEEDED", 0, 10)]), start=T0, end=T0 + timedelta(hours=1))
    out = compare(cur, prev).set_index(["pipeline", "metric"])
    f = out.loc[("a", "failed")]
    assert f["value"] == 1 and f["previous"] == 0 and f["change"] == 1 and pd.isna(f["change_pct"])


def test_rollup_kpis_and_compare():
    from datetime import date

    from insights.kpis import rollup_kpis

    base = {"retries": 1, "duration_p50": 50.0, "queue_seconds_sum": 20.0, "records_in": 1000,
            "records_out": 900, "records_rejected": 100, "cost_usd": 2.0, "failed_cost_usd": 0.5}
    daily = pd.DataFrame([
        {**base, "day": date(2026, 11, 18), "pipeline": "orders", "runs": 4, "succeeded": 4, "failed": 0,
         "duration_p95": 90.0, "duration_max": 100.0, "duration_sum": 240.0, "failed_cost_usd": 0.0},
        {**base, "day": date(2026, 11, 19), "pipeline": "orders", "runs": 4, "succeeded": 3, "failed": 1,
         "duration_p95": 110.0, "duration_max": 120.0, "duration_sum": 300.0},
        {**base, "day": date(2026, 11, 20), "pipeline": "orders", "runs": 2, "succeeded": 1, "failed": 1,
         "duration_p95": 70.0, "duration_max": 80.0, "duration_sum": 120.0},
    ])
    cur = rollup_kpis(daily, start=date(2026, 11, 19), end=date(2026, 11, 21))
    o = cur.loc["orders"]
    assert (o["runs"], o["succeeded"], o["failed"]) == (6, 4, 2)
    assert o["success_rate"] == pytest.approx(4 / 6) and o["duration_mean"] == 70.0
    assert o["duration_p95_max"] == 110.0 and o["duration_max"] == 120.0
    assert o["records_per_minute"] == pytest.approx(1800 / 7.0) and o["rejected_rate"] == 0.1
    assert o["cost_usd"] == 4.0 and o["failed_cost_usd"] == 1.0
    prev = rollup_kpis(daily, start=date(2026, 11, 17), end=date(2026, 11, 19))
    ch = compare(cur, prev).set_index(["pipeline", "metric"])
    assert ch.loc[("orders", "error_rate"), "change"] == pytest.approx(1 / 3)
    assert ch.loc[("orders", "duration_mean"), "previous"] == 60.0
