"""store.runs on SQLite and PostgreSQL: windows, failures, detail, SQL aggregates == pandas KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from insights.costs import run_cost_summary as run_cost_summary_pandas
from insights.kpis import window_kpis
from store.runs import (
    AGGREGATE_COLUMNS,
    ALL,
    freshness_runs,
    kpi_aggregates,
    recent_failures,
    recovery_runs,
    run_cost_summary,
    run_detail,
    runs_frame,
)
from store.schema import run_steps, runs
from store.writes import upsert

T0 = datetime(2026, 11, 19, tzinfo=UTC)


def _run(pipeline, n, status, minute, dur, *, queue=0, rin=100, rout=90, rej=10, retries=0, attempt=1, cost=0.25, trigger="schedule"):
    started = T0 + timedelta(minutes=minute)
    return {
        "run_id": f"reference:{pipeline}-{n}",
        "pipeline": pipeline,
        "source": "reference",
        "status": status,
        "trigger": trigger,
        "attempt": attempt,
        "scheduled_for": started.replace(minute=0),
        "queued_at": started - timedelta(seconds=queue),
        "started_at": started,
        "ended_at": None if status == "RUNNING" else started + timedelta(seconds=dur),
        "duration_seconds": None if status == "RUNNING" else float(dur),
        "records_in": rin,
        "records_out": rout,
        "records_rejected": rej,
        "retries": retries,
        "cost_usd": cost,
    }


ROWS = [
    _run("orders", 0, "SUCCEEDED", -90, 50),  # before the window
    _run("orders", 1, "SUCCEEDED", 0, 60, queue=10),
    _run("orders", 2, "FAILED", 60, 120, queue=20, rout=0, retries=2),
    _run("orders", 3, "TIMED_OUT", 120, 30, queue=30, rout=0, attempt=2, trigger="retry"),
    _run("orders", 4, "SUCCEEDED", 180, 90, queue=40, rin=200, rout=180, rej=20),
    _run("orders", 5, "RUNNING", 240, 0),
    _run("clicks", 1, "SUCCEEDED", 30, 300, rin=1000, rout=900, rej=100, cost=1.0),
    _run("clicks", 2, "CANCELLED", 90, 10, cost=0.0),
]


@pytest.fixture
def stored(engine, now):
    with engine.begin() as conn:
        upsert(conn, runs, ROWS, now=now)
        steps = [
            {"run_id": "reference:orders-2", "stage": "extract", "attempt": 1, "status": "SUCCEEDED",
             "started_at": T0 + timedelta(minutes=60), "ended_at": T0 + timedelta(minutes=61), "error_type": None},
            {"run_id": "reference:orders-2", "stage": "load", "attempt": 1, "status": "FAILED",
             "started_at": T0 + timedelta(minutes=61), "ended_at": T0 + timedelta(minutes=62), "error_type": "Throttled"},
            {"run_id": "reference:orders-2", "stage": "load", "attempt": 2, "status": "FAILED",
             "started_at": T0 + timedelta(minutes=62), "ended_at": T0 + timedelta(minutes=63), "error_type": None},
        ]
        upsert(conn, run_steps, steps, now=now)
    return engine


def test_runs_window_and_pipeline(stored):
    with stored.connect() as conn:
        all_ = runs_frame(conn, T0, T0 + timedelta(days=1))
        orders = runs_frame(conn, T0, T0 + timedelta(days=1), pipeline="orders")
        newest = runs_frame(conn, T0, T0 + timedelta(days=1), limit=2)
    assert len(all_) == 7 and len(orders) == 5
    assert all_["started_at"].iloc[0] == T0 and str(all_["started_at"].dt.tz) == "UTC"
    assert list(newest["run_id"]) == ["reference:orders-4", "reference:orders-5"]


def test_failures_and_detail(stored):
    with stored.connect() as conn:
        f = recent_failures(conn, since=T0)
        d = run_detail(conn, "reference:orders-2")
        assert run_detail(conn, "reference:nope") is None
    assert list(f["run_id"]) == ["reference:orders-3", "reference:orders-2"]
    assert d.run["status"] == "FAILED" and d.run["started_at"] == T0 + timedelta(minutes=60)
    assert list(zip(d.steps["stage"], d.steps["attempt"], strict=True)) == [("extract", 1), ("load", 1), ("load", 2)]
    assert d.steps.loc[1, "error_type"] == "Throttled"


def test_sql_aggregates_match_pandas_kpis(stored):
    start, end = T0, T0 + timedelta(days=1)
    with stored.connect() as conn:
        sql = kpi_aggregates(conn, start, end)
        raw = runs_frame(conn, start - timedelta(days=1), end)
    py = window_kpis(raw, start=start, end=end)[AGGREGATE_COLUMNS]
    assert list(sql.index) == ["clicks", "orders", ALL]
    o = sql.loc["orders"]
    assert (o["runs"], o["finished"], o["succeeded"], o["failed"]) == (5, 4, 2, 2)
    assert o["duration_p50"] == 75.0 and o["duration_p95"] == pytest.approx(115.5) and o["duration_max"] == 120.0
    assert o["queue_p50"] == 20.0
    assert o["records_per_minute"] == pytest.approx(270 / 2.5)
    assert o["retries"] == 2 and o["retried_runs"] == 1
    assert sql.loc["clicks", "success_rate"] == 0.5  # CANCELLED counts as finished, not failed
    for name in sql.index:
        for col in AGGREGATE_COLUMNS:
            a, b = sql.at[name, col], py.at[name, col]
            if a is None or (isinstance(a, float) and pd.isna(a)):
                assert b is None or pd.isna(b), (name, col)
            else:
                assert float(a) == pytest.approx(float(b)), (name, col)


def test_cost_summary_matches_pandas(stored):
    start, end = T0, T0 + timedelta(days=1)
    with stored.connect() as conn:
        sql = run_cost_summary(conn, start, end)
        raw = runs_frame(conn, start, end)
    py = run_cost_summary_pandas(raw)
    assert sql["pipeline"].tolist() == ["clicks", "orders"]
    assert sql.set_index("pipeline").loc["orders"].tolist() == [5, 2, 2, 270.0, 1.25, 0.5, 0.25]
    pd.testing.assert_frame_equal(sql.reset_index(drop=True), py.reset_index(drop=True), check_dtype=False)


def test_recovery_and_freshness_reads(stored):
    with stored.connect() as conn:
        rec = recovery_runs(conn, T0, T0 + timedelta(days=1), pipeline="orders")
        fr = freshness_runs(conn, now=T0 + timedelta(days=3), lookback=timedelta(hours=1))
    assert rec["status"].tolist() == ["SUCCEEDED", "FAILED", "TIMED_OUT", "SUCCEEDED"]
    # nothing in the last hour: only each pipeline's last success comes back
    assert fr[["pipeline", "status"]].values.tolist() == [["clicks", "SUCCEEDED"], ["orders", "SUCCEEDED"]]
    assert fr.set_index("pipeline").loc["orders", "started_at"] == T0 + timedelta(minutes=180)


def test_freshness_reads_for_named_pipelines_match_the_scan(stored):
    with stored.connect() as conn:
        for now, lookback in ((T0 + timedelta(days=3), timedelta(hours=1)), (T0 + timedelta(minutes=200), timedelta(days=2)),
                              (T0 + timedelta(minutes=100), timedelta(minutes=30))):
            every = freshness_runs(conn, now=now, lookback=lookback)
            named = freshness_runs(conn, now=now, lookback=lookback, pipelines=["orders", "clicks", "never_ran"])
            pd.testing.assert_frame_equal(named, every)
            one = freshness_runs(conn, now=now, lookback=lookback, pipelines=["orders"])
            pd.testing.assert_frame_equal(one, every[every["pipeline"] == "orders"].reset_index(drop=True))
        assert freshness_runs(conn, now=T0, pipelines=[]).empty
        # more pipelines than SQLite takes terms in one compound SELECT (500)
        many = ["orders", "clicks"] + [f"p{i:04d}" for i in range(600)]
        now = T0 + timedelta(days=3)
        pd.testing.assert_frame_equal(freshness_runs(conn, now=now, pipelines=many), freshness_runs(conn, now=now))


def test_aggregates_for_one_pipeline_and_an_empty_window(stored):
    with stored.connect() as conn:
        one = kpi_aggregates(conn, T0, T0 + timedelta(days=1), pipeline="clicks")
        empty = kpi_aggregates(conn, T0 + timedelta(days=5), T0 + timedelta(days=6))
    assert list(one.index) == ["clicks", ALL]
    assert one.loc["clicks", "runs"] == 2 and one.loc[ALL, "runs"] == 2
    assert one.loc["clicks", "duration_p50"] == 155.0  # 300 s and 10 s
    assert list(empty.index) == [ALL]
    assert empty.loc[ALL, "runs"] == 0 and empty.loc[ALL, "success_rate"] is None
    assert empty.loc[ALL, "duration_p50"] is None
