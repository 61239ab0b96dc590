"""The ingest bench's COPY baseline writes a table of the same shape as the upsert's target."""

import pytest

from bench.bench_store_ingest import _create_like, partitioning


@pytest.mark.parametrize("table", ["metric_points", "cost_daily", "runs"])
def test_baseline_table_is_partitioned_like_the_target(engine, table):
    if engine.dialect.name != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with engine.connect() as conn:
        _create_like(conn, table, "bench_copy_shape")
        copy_key, copy_bounds = partitioning(conn, "bench_copy_shape")
        key, bounds = partitioning(conn, table)
        conn.rollback()
    # same bounds, same storage parameters (metric_points' partitions: fillfactor 90)
    assert (copy_key, sorted(copy_bounds)) == (key, sorted(bounds))
    if table == "metric_points":
        assert {tuple(options) for _, options in copy_bounds} == {("fillfactor=90",)}
    # metric points and cost rows are partitioned by month on PostgreSQL, runs are not
    assert (key is not None) == (table != "runs")
    assert bool(bounds) == (table != "runs")
