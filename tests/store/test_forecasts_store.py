"""store.forecasts on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from store.forecasts import latest_snapshots, points_to_score, save_snapshot, snapshot_points


def _points(first: date, means):
    return pd.DataFrame({
        "date": [first + timedelta(days=i) for i in range(len(means))],
        "mean": means,
        "lower": [m - 1 for m in means],
        "upper": [m + 1 for m in means],
    })


def test_save_latest_and_score(engine):
    t1 = datetime(2026, 11, 18, 9, tzinfo=UTC)
    t2 = datetime(2026, 11, 19, 9, tzinfo=UTC)
    with engine.begin() as conn:
        a = save_snapshot(conn, created_at=t1, method="pipepulse", subject="total", level=0.8,
                          points=_points(date(2026, 11, 18), [10.0, 11.0, 12.0]), mase=0.7, coverage=0.8,
                          backtest_points=40, budget=100.0, budget_cross_day=date(2026, 11, 28),
                          train_start=date(2026, 10, 1), train_end=date(2026, 11, 17))
        b = save_snapshot(conn, created_at=t2, method="pipepulse", subject="total", level=0.8,
                          points=_points(date(2026, 11, 19), [20.0, 21.0]))
        c = save_snapshot(conn, created_at=t2, method="aws", subject="total", level=0.8,
                          points=_points(date(2026, 11, 19), [30.0]))
    assert len({a, b, c}) == 3
    with engine.connect() as conn:
        latest = latest_snapshots(conn)
        pts = snapshot_points(conn, a)
        score = points_to_score(conn, until=date(2026, 11, 19))
    assert latest[["method", "subject", "snapshot_id"]].values.tolist() == [["aws", "total", c], ["pipepulse", "total", b]]
    assert pts["day"].tolist() == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    assert pts["mean"].tolist() == [10.0, 11.0, 12.0]
    # days up to the 19th: two from a, one from b, one from aws
    assert score[["snapshot_id", "day", "mean"]].values.tolist() == [
        [c, date(2026, 11, 19), 30.0],
        [a, date(2026, 11, 18), 10.0],
        [a, date(2026, 11, 19), 11.0],
        [b, date(2026, 11, 19), 20.0],
    ]
    with engine.connect() as conn:
        first = latest_snapshots(conn, method="pipepulse")
    assert first.loc[0, "created_at"] == t2


def test_same_day_snapshot_replaces(engine):
    t = datetime(2026, 11, 20, 8, tzinfo=UTC)
    with engine.begin() as conn:
        save_snapshot(conn, created_at=t, method="pipepulse", subject="pipeline:orders", level=0.8,
                      points=_points(date(2026, 11, 20), [1.0, 2.0]))
        sid = save_snapshot(conn, created_at=t + timedelta(hours=3), method="pipepulse", subject="pipeline:orders",
                            level=0.9, points=_points(date(2026, 11, 20), [5.0]), mape=0.1)
    with engine.connect() as conn:
        latest = latest_snapshots(conn, subject="pipeline:orders")
        pts = snapshot_points(conn, sid)
        everything = points_to_score(conn, until=date(2026, 12, 31))
    assert len(latest) == 1 and latest.loc[0, "snapshot_id"] == sid and latest.loc[0, "level"] == 0.9
    assert latest.loc[0, "mape"] == 0.1
    assert pts["mean"].tolist() == [5.0] and len(everything) == 1
