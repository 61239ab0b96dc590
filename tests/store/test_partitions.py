"""Monthly partitions of metric_points and cost_daily on PostgreSQL (store/partitions.py,
migration 0009_h22i); SQLite keeps plain tables and the same results."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobs import retention
from store import partitions
from store.partitions import (
    create_month,
    ensure_months,
    is_partitioned,
    month_partitions,
    partition_of,
)
from store.schema import cost_daily, metric_points
from store.writes import upsert


def _month(d: date, add: int = 0) -> date:
    n = d.year * 12 + d.month - 1 + add
    return date(n // 12, n % 12 + 1, 1)


def _cost(day: date, billed: float) -> dict:
    return {
        "source": "cur", "day": day, "provider": "AWS", "account": "111122223333", "service": "AWS Glue",
        "region": "us-east-1", "usage_type": "USE1-DPU-Hour", "pipeline": "orders",
        "billed_cost": billed, "effective_cost": billed, "usage_quantity": 1.0, "currency": "USD",
    }


def test_partitions_exist_for_this_month_and_the_next_ones(engine, now):
    with engine.begin() as conn:
        created = ensure_months(conn, now)
        if engine.dialect.name == "sqlite":
            assert created == [] and not is_partitioned(conn, "metric_points")
            return
        this = _month(now.date())
        for table in partitions.PARTITIONED:
            assert is_partitioned(conn, table)
            starts = {p.start for p in month_partitions(conn, table)}
            assert {_month(this, k) for k in range(partitions.MONTHS_AHEAD + 1)} <= starts, table
        # a second pass creates nothing
        assert ensure_months(conn, now) == []


@pytest.mark.parametrize("table", ["metric_points", "cost_daily"])
def test_rows_land_in_their_month_partition_and_far_ones_in_the_default(engine, now, table):
    if engine.dialect.name != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    this = _month(now.date())
    far = _month(this, -30)  # no partition for it: the default takes it
    with engine.begin() as conn:
        ensure_months(conn, now)
        if table == "metric_points":
            upsert(conn, metric_points, [
                {"series_id": 1, "ts": datetime(m.year, m.month, 1, tzinfo=UTC) + timedelta(hours=1), "value": 1.0}
                for m in (this, _month(this, 1), far)
            ])
            where, col = "series_id = 1 AND ts >= :lo AND ts < :hi", "ts"
            bounds = lambda m: {"lo": datetime(m.year, m.month, 1, tzinfo=UTC),  # noqa: E731
                                "hi": datetime(*_month(m, 1).timetuple()[:3], tzinfo=UTC)}
        else:
            upsert(conn, cost_daily, [_cost(m + timedelta(days=3), 2.0) for m in (this, _month(this, 1), far)])
            where, col = "day >= :lo AND day < :hi", "day"
            bounds = lambda m: {"lo": m, "hi": _month(m, 1)}  # noqa: E731
        assert col == partitions.PARTITIONED[table]
        assert partition_of(conn, table, where, bounds(this)) == [f"{table}_p{this:%Y%m}"]
        assert partition_of(conn, table, where, bounds(_month(this, 1))) == [f"{table}_p{_month(this, 1):%Y%m}"]
        assert partition_of(conn, table, where, bounds(far)) == [f"{table}_default"]
        # creating the far month's partition moves its row out of the default partition
        assert create_month(conn, table, far)
        assert partition_of(conn, table, where, bounds(far)) == [f"{table}_p{far:%Y%m}"]
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 3


def test_retention_drops_whole_expired_months_and_keeps_the_rest_exact(engine, make_settings, now):
    settings = make_settings("[retention]\nmetric_points_days = 60\n")
    start = now - timedelta(days=150)
    rows = [
        {"series_id": s, "ts": start + timedelta(hours=6 * i), "value": float((i * 7 + s) % 13)}
        for s in (1, 2)
        for i in range(150 * 4)
    ]
    cutoff = now - timedelta(days=60)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            m = _month(start.date())
            while m <= _month(now.date()):
                create_month(conn, "metric_points", m)
                m = _month(m, 1)
        assert upsert(conn, metric_points, rows) == len(rows)
    kept = [r for r in rows if r["ts"] >= cutoff]
    by_month: dict[tuple[int, int], float] = {}
    for r in kept:
        key = (r["ts"].year, r["ts"].month)
        by_month[key] = by_month.get(key, 0.0) + r["value"]

    deleted = retention.run(settings, engine, now=now)

    assert deleted["metric_points"] == len(rows) - len(kept)
    with engine.connect() as conn:
        got = conn.execute(sa.select(metric_points.c.ts, metric_points.c.value)).all()
        if engine.dialect.name == "postgresql":
            left = {p.start for p in month_partitions(conn, "metric_points")}
            expired = _month(start.date())  # wholly before the cutoff: dropped, not emptied
            assert expired not in left
            assert _month(cutoff.date()) in left  # the partly expired month stays, pruned by row
    assert len(got) == len(kept)
    assert min(ts for ts, _ in got) >= cutoff
    totals: dict[tuple[int, int], float] = {}
    for ts, value in got:
        totals[(ts.year, ts.month)] = totals.get((ts.year, ts.month), 0.0) + value
    assert totals == by_month


def test_second_identical_upsert_into_partitioned_tables_changes_nothing(engine, now):
    this = _month(now.date())
    points = [{"series_id": 3, "ts": now - timedelta(minutes=5 * i), "value": i / 3} for i in range(2000)]
    costs = [_cost(this + timedelta(days=d % 20), float(d)) for d in range(20)]
    with engine.begin() as conn:
        ensure_months(conn, now)
        assert upsert(conn, metric_points, points) == len(points)
        assert upsert(conn, cost_daily, costs) == len(costs)
    with engine.begin() as conn:
        assert upsert(conn, metric_points, points) == 0
        assert upsert(conn, cost_daily, costs) == 0
        restated = [{**c, "billed_cost": c["billed_cost"] + 1} for c in costs[:5]]
        assert upsert(conn, cost_daily, restated) == 5


def test_migration_down_and_up_keeps_rows_and_extra_columns(engine, now):
    if engine.dialect.name != "postgresql":
        pytest.skip("the migration changes nothing on SQLite")
    from alembic import command

    from store.db import _alembic_config

    with engine.begin() as conn:
        ensure_months(conn, now)
        upsert(conn, metric_points, [{"series_id": 9, "ts": now, "value": 2.5}])
        upsert(conn, cost_daily, [_cost(now.date(), 4.0)])
    command.downgrade(_alembic_config(engine), "0006_h20a")
    with engine.begin() as conn:
        assert not is_partitioned(conn, "metric_points") and not is_partitioned(conn, "cost_daily")
        # a column another migration might add: carried through the rebuild
        conn.execute(sa.text("ALTER TABLE cost_daily ADD COLUMN note text NOT NULL DEFAULT 'x'"))
    try:
        command.upgrade(_alembic_config(engine), "head")
        with engine.connect() as conn:
            assert is_partitioned(conn, "metric_points") and is_partitioned(conn, "cost_daily")
            assert conn.execute(sa.text("SELECT value FROM metric_points WHERE series_id = 9")).scalar_one() == 2.5
            assert conn.execute(sa.text("SELECT billed_cost, note FROM cost_daily")).one() == (4.0, "x")
            pk = conn.execute(
                sa.text("SELECT conname FROM pg_constraint WHERE conrelid = 'cost_daily'::regclass AND contype = 'p'")
            ).scalar_one()
            assert pk == "pk_cost_daily"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE cost_daily DROP COLUMN IF EXISTS note"))


def _fillfactor(conn, name: str) -> str | None:
    options = conn.execute(
        sa.text("SELECT reloptions FROM pg_class WHERE oid = CAST(:n AS regclass)"), {"n": name}
    ).scalar_one()
    return next((o.split("=", 1)[1] for o in options or [] if o.startswith("fillfactor=")), None)


def test_metric_points_partitions_have_fillfactor_90_from_the_schedule_and_the_migration(engine, now):
    if engine.dialect.name != "postgresql":
        pytest.skip("partitions (and fillfactor) are PostgreSQL's")
    from alembic import command

    from store.db import _alembic_config

    this = _month(now.date())
    later = _month(this, 8)  # beyond what the migrations made: the schedule's
    with engine.begin() as conn:
        ensure_months(conn, datetime(later.year, later.month, 2, tzinfo=UTC))
        made = [p.name for p in month_partitions(conn, "metric_points")]
        assert f"metric_points_p{later:%Y%m}" in made
        assert {_fillfactor(conn, n) for n in [*made, "metric_points_default"]} == {"90"}
        # cost_daily keeps PostgreSQL's default (FILLFACTOR names metric_points only)
        assert {_fillfactor(conn, p.name) for p in month_partitions(conn, "cost_daily")} == {None}
    command.downgrade(_alembic_config(engine), "0010_h22z")
    try:
        with engine.begin() as conn:
            assert {_fillfactor(conn, n) for n in [*made, "metric_points_default"]} == {None}
            assert create_month(conn, "metric_points", _month(later, 6))  # made before the migration
            conn.execute(sa.text(f"ALTER TABLE metric_points_p{_month(later, 6):%Y%m} RESET (fillfactor)"))
        command.upgrade(_alembic_config(engine), "head")
        with engine.connect() as conn:
            names = [p.name for p in month_partitions(conn, "metric_points")] + ["metric_points_default"]
            assert f"metric_points_p{_month(later, 6):%Y%m}" in names
            assert {_fillfactor(conn, n) for n in names} == {"90"}
    finally:
        command.upgrade(_alembic_config(engine), "head")
        with engine.begin() as conn:  # (the shared test database keeps its partitions otherwise)
            for m in range(7):
                for table in partitions.PARTITIONED:
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}_p{_month(later, m):%Y%m}"))
