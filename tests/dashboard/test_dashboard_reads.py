"""store.dashboard_reads on SQLite and PostgreSQL, with hand-made rows and exact answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store import dashboard_reads as reads
from store.schema import pipelines, run_logs, run_steps, runs
from store.writes import upsert

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def _run(i, pipeline, status, *, hours, duration, records=100, cost=0.5, attempt=1, trigger="schedule", retries=0):
    start = T0 + timedelta(hours=hours)
    return {
        "run_id": f"reference:{pipeline}-{i}", "pipeline": pipeline, "source": "reference", "status": status,
        "trigger": trigger, "attempt": attempt, "queued_at": start - timedelta(seconds=30), "started_at": start,
        "ended_at": start + timedelta(seconds=duration), "duration_seconds": float(duration), "records_in": records,
        "records_out": records, "records_rejected": 0, "retries": retries, "cost_usd": cost,
        "error_message": "boom" if status == "FAILED" else None, "correlation_id": f"c-{i}",
    }


@pytest.fixture
def filled(engine, now):
    rows = [
        _run(1, "orders", "SUCCEEDED", hours=1, duration=10),
        _run(2, "orders", "SUCCEEDED", hours=2, duration=20, retries=2),
        _run(3, "orders", "FAILED", hours=3, duration=30, records=0, attempt=2, trigger="retry"),
        _run(4, "orders", "SUCCEEDED", hours=4, duration=40),
        _run(5, "daily", "TIMED_OUT", hours=5, duration=100, cost=2.0),
        _run(6, "daily", "SUCCEEDED", hours=30, duration=50, records=1000, cost=1.0),
    ]
    with engine.begin() as conn:
        upsert(conn, runs, rows, now=now)
        upsert(conn, pipelines, [{"name": "orders"}, {"name": "daily"}, {"name": "idle"}], now=now)
        upsert(conn, run_steps, [
            {"run_id": "reference:orders-3", "stage": "load", "attempt": a, "status": s, "started_at": T0 + timedelta(hours=3, seconds=a)}
            for a, s in ((1, "FAILED"), (2, "FAILED"))
        ], now=now)
        upsert(conn, run_logs, [
            {"log_id": "g:1", "run_id": "reference:orders-3", "correlation_id": "c-3", "ts": T0 + timedelta(hours=3), "level": "INFO", "message": "start"},
            {"log_id": "g:2", "run_id": None, "correlation_id": "c-3", "ts": T0 + timedelta(hours=3, seconds=5), "level": "ERROR", "message": "<script>alert(1)</script>"},
            {"log_id": "g:3", "run_id": "reference:orders-4", "correlation_id": "c-4", "ts": T0 + timedelta(hours=4), "level": "INFO", "message": "other"},
        ])
    return engine


def test_run_window_stats_counts_and_sums_in_sql(filled):
    with filled.connect() as conn:
        got = reads.run_window_stats(conn, T0, T0 + timedelta(hours=24))
        orders = reads.run_window_stats(conn, T0, T0 + timedelta(hours=24), pipelines=["orders"])
    assert got == {"runs": 5, "succeeded": 3, "failed": 2, "terminal": 5, "retries": 2, "records_in": 400,
                   "records_out": 400, "records_rejected": 0, "cost_usd": 4.0}
    assert orders["runs"] == 4 and orders["failed"] == 1


def test_first_run_start_is_where_the_history_of_the_chosen_pipelines_starts(filled):
    with filled.connect() as conn:
        assert reads.first_run_start(conn, T0 + timedelta(days=2)) == T0 + timedelta(hours=1)
        assert reads.first_run_start(conn, T0 + timedelta(days=2), pipelines=["daily"]) == T0 + timedelta(hours=5)
        assert reads.first_run_start(conn, T0 + timedelta(hours=1)) is None  # none started before
        assert reads.first_run_start(conn, T0 + timedelta(days=2), pipelines=["idle"]) is None


def test_duration_quantiles_interpolate_like_numpy(filled):
    with filled.connect() as conn:
        q = reads.duration_quantiles(conn, T0, T0 + timedelta(hours=24), pipelines=["orders"])
        none = reads.duration_quantiles(conn, T0 - timedelta(days=9), T0 - timedelta(days=8))
    assert q[0.5] == pytest.approx(25.0)
    assert q[0.95] == pytest.approx(38.5)
    assert none == {0.5: None, 0.95: None}


def test_recent_runs_keeps_the_newest_per_pipeline(filled):
    with filled.connect() as conn:
        got = reads.recent_runs(conn, T0, per_pipeline=2)
    assert list(zip(got["pipeline"], got["run_id"], strict=True)) == [
        ("daily", "reference:daily-5"), ("daily", "reference:daily-6"),
        ("orders", "reference:orders-3"), ("orders", "reference:orders-4"),
    ]
    assert str(got["started_at"].dt.tz) == "UTC"


def test_recent_runs_of_chosen_pipelines(filled):
    with filled.connect() as conn:
        got = reads.recent_runs(conn, T0, pipelines=["orders", "no_such_pipeline"], per_pipeline=2)
    assert list(zip(got["pipeline"], got["run_id"], strict=True)) == [
        ("orders", "reference:orders-3"), ("orders", "reference:orders-4"),
    ]


def test_last_runs(filled):
    with filled.connect() as conn:
        last = reads.last_runs(conn, T0)
        late = reads.last_runs(conn, T0 + timedelta(hours=4, minutes=30), pipelines=["daily"])
    assert list(last["pipeline"]) == ["daily", "orders"]
    assert list(last["last_status"]) == ["SUCCEEDED", "SUCCEEDED"]
    assert last.loc[1, "last_success_at"] == T0 + timedelta(hours=4, seconds=40)
    assert last.loc[0, "last_started_at"] == T0 + timedelta(hours=30)
    assert list(late["pipeline"]) == ["daily"]


def test_last_runs_without_the_last_success(filled):
    with filled.connect() as conn:
        full = reads.last_runs(conn, T0)
        short = reads.last_runs(conn, T0, success=False)
        none = reads.last_runs(conn, T0 + timedelta(days=30), success=False)
    assert list(short.columns) == ["pipeline", "last_started_at", "last_status"]
    assert short.equals(full[["pipeline", "last_started_at", "last_status"]])
    assert list(none.columns) == ["pipeline", "last_started_at", "last_status"] and none.empty



def test_run_logs_by_run_or_correlation_id(filled):
    with filled.connect() as conn:
        logs = reads.run_logs_frame(conn, run_id="reference:orders-3", correlation_id="c-3")
        by_run = reads.run_logs_frame(conn, run_id="reference:orders-3")
    assert list(logs["message"]) == ["start", "<script>alert(1)</script>"]
    assert list(logs["level"]) == ["INFO", "ERROR"]
    assert list(by_run["message"]) == ["start"]


def test_runs_frame_filters_and_limits(filled):
    with filled.connect() as conn:
        got = reads.runs_frame(conn, T0, T0 + timedelta(days=2), pipelines=["orders", "daily"], statuses=["FAILED", "TIMED_OUT"])
        newest = reads.runs_frame(conn, T0, T0 + timedelta(days=2), limit=2)
    assert list(got["run_id"]) == ["reference:daily-5", "reference:orders-3"]
    assert list(newest["run_id"]) == ["reference:daily-6", "reference:daily-5"]


def test_pipeline_names_include_stored_definitions(filled):
    with filled.connect() as conn:
        assert reads.pipeline_names(conn) == ["daily", "idle", "orders"]




def test_up_to_bounds_the_health_grid_and_the_last_runs(filled):
    # "Up to" the end of hour 4: the runs after it (daily-5 at hour 5, daily-6 at hour 30) are not seen
    until = T0 + timedelta(hours=4, minutes=30)
    with filled.connect() as conn:
        grid = reads.recent_runs(conn, T0, per_pipeline=2, until=until)
        last = reads.last_runs(conn, T0, until=until)
    assert list(grid["run_id"]) == ["reference:orders-3", "reference:orders-4"]
    assert list(last["pipeline"]) == ["orders"]
    assert last.loc[0, "last_started_at"] == T0 + timedelta(hours=4)


def test_run_points_for_hourly_trends(filled):
    with filled.connect() as conn:
        got = reads.run_points(conn, T0 + timedelta(hours=2), T0 + timedelta(hours=5), pipelines=["orders", "daily"])
    assert list(got.columns) == reads.POINT_COLUMNS
    assert list(got["started_at"]) == [T0 + timedelta(hours=h) for h in (2, 3, 4)]
    assert list(got["status"]) == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert list(got["records_out"]) == [100, 0, 100]


def test_cost_explorer_lag_is_never_negative():
    """Issue #21: the Collectors page said Cost Explorer lag -1022 minutes (its window ends at the
    next midnight); its data reaches the time the pass ran."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from dashboard.data import summarize_passes

    now = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    passes = pd.DataFrame([{
        "source": "ce", "started_at": now - timedelta(minutes=10), "ended_at": now - timedelta(minutes=9),
        "window_end": datetime(2026, 11, 21, tzinfo=UTC), "status": "succeeded", "error": None,
        "rows_written": 3, "api_calls": 4, "api_cost_usd": 0.04,
    }])
    row = summarize_passes(passes, now).iloc[0]
    assert row["data_through"] == now - timedelta(minutes=9)
    assert row["lag_minutes"] == 9.0
