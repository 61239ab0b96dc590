"""insights.buckets: hourly run trends in the daily rollup's columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from insights.buckets import BUCKET_COLUMNS, rollup_runs

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_rollup_runs_per_hour_and_pipeline():
    points = pd.DataFrame({
        "pipeline": ["a", "a", "a", "b"],
        "started_at": [T0 + timedelta(minutes=5), T0 + timedelta(minutes=50), T0 + timedelta(hours=1, minutes=1), T0],
        "status": ["SUCCEEDED", "TIMED_OUT", "FAILED", "RUNNING"],
        "attempt": [1, 1, 2, 1],
        "duration_seconds": [10.0, 30.0, 5.0, None],
        "records_out": [100, 20, None, None],
    })
    got = rollup_runs(points, "h")
    assert list(got.columns) == BUCKET_COLUMNS
    assert [(str(d), p) for d, p in zip(got["day"], got["pipeline"], strict=True)] == [
        ("2026-11-20 10:00:00", "a"), ("2026-11-20 10:00:00", "b"), ("2026-11-20 11:00:00", "a")]
    assert list(got["runs"]) == [2, 1, 1]
    assert list(got["succeeded"]) == [1, 0, 0]
    assert list(got["failed"]) == [1, 0, 1]  # timed out counts as failed, as in the daily rollup
    assert got["duration_p50"].tolist()[0] == 20.0
    assert got["duration_p95"].tolist()[0] == 29.0
    assert got["records_out"].tolist()[0] == 120
    assert pd.isna(got["records_out"].tolist()[1])  # no count is not zero records


def test_rollup_runs_of_nothing_has_the_columns():
    assert list(rollup_runs(pd.DataFrame(columns=["pipeline", "started_at", "status", "duration_seconds", "records_out"])).columns) == BUCKET_COLUMNS
