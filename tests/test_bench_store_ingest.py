"""The ingest bench's COPY baseline writes a table of the same shape as the upsert's target."""

import pytest
import sqlalchemy as sa

from bench.bench_store_ingest import _create_like


def _shape(conn: sa.Connection, table: str) -> tuple[str | None, list[str]]:
    key = conn.execute(sa.text("SELECT pg_get_partkeydef(CAST(:t AS regclass))"), {"t": table}).scalar_one()
    bounds = conn.execute(
        sa.text(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).scalars()
    return key, sorted(bounds)


@pytest.mark.parametrize("table", ["metric_points", "cost_daily", "runs"])
def test_baseline_table_is_partitioned_like_the_target(engine, table):
    if engine.dialect.name != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with engine.connect() as conn:
        _create_like(conn, table, "bench_copy_shape")
        copy_key, copy_bounds = _shape(conn, "bench_copy_shape")
        key, bounds = _shape(conn, table)
        conn.rollback()
    assert (copy_key, copy_bounds) == (key, bounds)
    # metric points and cost rows are partitioned by month on PostgreSQL, runs are not
    assert (key is not None) == (table != "runs")
    assert bool(bounds) == (table != "runs")
