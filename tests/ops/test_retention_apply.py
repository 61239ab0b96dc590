from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs import retention
from jobs.retention import DEFAULT_DAYS, retention_config
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings
from store.schema import (
    collector_runs,
    cost_daily,
    metric_points,
    metric_series,
    notifications,
    run_daily,
    run_logs,
    run_steps,
    runs,
)

# Small batches so a purge takes several transactions.
CONFIG = {
    "batch_size": 3,
    "metric_points_days": 10,
    "run_logs_days": 5,
    "run_steps_days": 20,
    "collector_runs_days": 7,
    "notifications_days": 30,
}


def _settings(db_url: str, retention: dict) -> Settings:
    return Settings(database_url=db_url, data_dir=Path("."), raw={"retention": retention})


def _seed(engine, now: datetime) -> None:
    """Rows at known ages (in days before ``now``) in every pruned table, plus the rollups."""
    day = timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(metric_series),
            [{"series_id": 1, "series_key": "k1", "namespace": "N", "metric_name": "M", "stat": "Sum", "period_seconds": 300}],
        )
        # points every 2 days back to 30 days: ages 0, 2, ... 30 (16 points); 10-day cutoff keeps 0..8 and drops 10.. (the
        # point exactly at the cutoff is not older than it, so it stays)
        conn.execute(
            sa.insert(metric_points),
            [{"series_id": 1, "ts": now - i * day, "value": float(i)} for i in range(0, 31, 2)],
        )
        conn.execute(
            sa.insert(run_logs),
            [
                {"log_id": f"g:{i}", "run_id": "reference:r1", "ts": now - i * day, "message": f"m{i}"}
                for i in (0, 1, 4, 6, 9, 40)
            ],
        )
        conn.execute(
            sa.insert(runs),
            [
                {"run_id": "reference:old", "pipeline": "p", "source": "reference", "status": "SUCCEEDED",
                 "started_at": now - 60 * day, "updated_at": now},
                {"run_id": "reference:new", "pipeline": "p", "source": "reference", "status": "SUCCEEDED",
                 "started_at": now - day, "updated_at": now},
            ],
        )
        def step(run, stage, attempt, status, *, started=None, queued=None):
            return {"run_id": run, "stage": stage, "attempt": attempt, "status": status, "updated_at": now,
                    "started_at": now - started * day if started is not None else None,
                    "queued_at": now - queued * day if queued is not None else None}

        conn.execute(
            sa.insert(run_steps),
            [
                step("reference:old", "ingest", 1, "SUCCEEDED", started=60),
                step("reference:old", "transform", 1, "FAILED", started=59),
                step("reference:old", "transform", 2, "SUCCEEDED", started=21),
                step("reference:old", "load", 1, "CANCELLED", queued=25),  # never started: aged by queued_at
                step("reference:new", "ingest", 1, "SUCCEEDED", started=1),
                step("reference:new", "transform", 1, "RUNNING", started=19, queued=30),
            ],
        )
        conn.execute(
            sa.insert(collector_runs),
            [{"source": "ce", "started_at": now - i * day, "status": "succeeded"} for i in (1, 6, 8, 100)],
        )
        conn.execute(
            sa.insert(notifications),
            [
                {"digest_id": "d", "rule": "failed", "recipient": "a@x", "item_key": f"run:{i}", "item_version": "1",
                 "status": "sent", "created_at": now - i * day}
                for i in (29, 31, 365)
            ],
        )
        conn.execute(
            sa.insert(run_daily),
            [{"day": date(2026, 1, 1) + timedelta(days=i), "pipeline": "p", "runs": 1, "succeeded": 1, "failed": 0,
              "retries": 0, "updated_at": now} for i in range(5)],
        )
        conn.execute(
            sa.insert(cost_daily),
            [{"source": "focus", "day": date(2025, 1, 1) + timedelta(days=i), "provider": "AWS", "account": "1",
              "service": "S3", "region": "us-east-1", "usage_type": "", "pipeline": "p", "billed_cost": 1.0,
              "effective_cost": 1.0, "updated_at": now} for i in range(4)],
        )


def _ages(engine, table, col, now) -> list[int]:
    with engine.connect() as conn:
        values = conn.execute(sa.select(col)).scalars().all()
    return sorted(round((now - v).total_seconds() / 86400) for v in values)


def test_retention_deletes_exactly_the_old_rows_and_keeps_rollups(engine, now):
    _seed(engine, now)
    settings = _settings(str(engine.url.render_as_string(hide_password=False)), CONFIG)

    planned = retention.plan(settings, engine, now=now)
    deleted = retention.run(settings, engine, now=now)

    expected = {"metric_points": 10, "run_logs": 3, "run_steps": 4, "collector_runs": 2, "notifications": 2}
    assert deleted == expected
    assert planned == expected
    assert _ages(engine, metric_points, metric_points.c.ts, now) == [0, 2, 4, 6, 8, 10]
    assert _ages(engine, run_logs, run_logs.c.ts, now) == [0, 1, 4]
    with engine.connect() as conn:
        steps = conn.execute(sa.select(run_steps.c.run_id, run_steps.c.stage, run_steps.c.attempt)).all()
        assert sorted(steps) == [("reference:new", "ingest", 1), ("reference:new", "transform", 1)]
        # runs, series and rollups are untouched
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_series)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(run_daily)).scalar_one() == 5
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one() == 4
    assert _ages(engine, collector_runs, collector_runs.c.started_at, now) == [1, 6]
    assert _ages(engine, notifications, notifications.c.created_at, now) == [29]

    # a second pass finds nothing left to delete
    assert retention.run(settings, engine, now=now) == dict.fromkeys(expected, 0)


def test_defaults_apply_when_section_is_absent(engine, now):
    _seed(engine, now)
    settings = _settings(str(engine.url.render_as_string(hide_password=False)), {})
    assert retention_config(settings).days == DEFAULT_DAYS
    deleted = retention.run(settings, engine, now=now)
    # defaults: points 90 days (none older), logs 30 (age 40), steps 90 (none), collector runs 90 (age 100),
    # notifications 180 (age 365)
    assert deleted == {"metric_points": 0, "run_logs": 1, "run_steps": 0, "collector_runs": 1, "notifications": 1}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"run_logs_days": 0}, r"\[retention\] run_logs_days: expected a whole number of days >= 1, got 0"),
        ({"run_logs_days": "30"}, r"\[retention\] run_logs_days: expected int, got '30'"),
        ({"runs_days": 30}, r"\[retention\] runs_days: unknown key; did you mean run_logs_days\?"),
        ({"batch_size": 0}, r"\[retention\] batch_size: expected a whole number >= 1, got 0"),
    ],
)
def test_bad_retention_config_names_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        retention_config(_settings("sqlite:///x.db", section))
