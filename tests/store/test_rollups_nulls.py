from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from store.rollups import refresh_run_daily
from store.schema import run_daily, runs
from store.writes import upsert


def test_a_day_whose_runs_have_no_record_counts_rolls_up(engine, now):
    # the only run of the day is still running: records_out and duration are NULL
    start = now - timedelta(hours=1)
    with engine.begin() as conn:
        upsert(conn, runs, [{"run_id": "r1", "pipeline": "p", "source": "reference", "status": "RUNNING", "started_at": start}])
        refresh_run_daily(conn, days={start.date()})
        row = conn.execute(sa.select(run_daily)).mappings().one()
    assert (row["pipeline"], row["runs"], row["succeeded"], row["failed"]) == ("p", 1, 0, 0)
    assert row["records_out"] in (None, 0)
