"""store.writes.upsert's fast path (tuned for the ingest bench, issue 2): batches that repeat a
key, no-op second upserts, and real changes, on every database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from store.schema import metric_points, runs
from store.writes import upsert

T = datetime(2026, 11, 20, tzinfo=UTC)


def _run(i, status="SUCCEEDED"):
    return {
        "run_id": f"reference:{i}",
        "pipeline": "orders",
        "source": "reference",
        "status": status,
        "started_at": T,
        "records_in": i,
        "updated_at": T,
    }


def test_upsert_handles_repeated_keys_changes_and_no_ops(engine):
    with engine.begin() as conn:
        assert upsert(conn, runs, [_run(1), _run(2), _run(1)]) == 2  # a key twice in one batch
        assert upsert(conn, runs, [_run(1), _run(2)]) == 0  # nothing changed
        assert (
            upsert(conn, runs, [_run(1, "FAILED"), _run(2), _run(3)]) == 2
        )  # one update, one insert
        assert upsert(conn, metric_points, [{"series_id": 1, "ts": T, "value": 1.0}] * 3) == 1
    with engine.connect() as conn:
        got = conn.execute(sa.select(runs.c.run_id, runs.c.status).order_by(runs.c.run_id)).all()
        assert [tuple(r) for r in got] == [
            ("reference:1", "FAILED"),
            ("reference:2", "SUCCEEDED"),
            ("reference:3", "SUCCEEDED"),
        ]
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_points)).scalar_one() == 1


def test_a_batch_of_new_rows_and_restated_stored_ones_counts_each_change(engine):
    with engine.begin() as conn:
        assert upsert(conn, runs, [_run(i) for i in range(10)]) == 10
    with engine.begin() as conn:
        batch = [_run(i, "FAILED") if i < 3 else _run(i) for i in range(20)]  # 3 restated, 7 same, 10 new
        assert upsert(conn, runs, batch) == 13
        assert upsert(conn, runs, batch) == 0
    with engine.connect() as conn:
        failed = conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.status == "FAILED")).scalar_one()
        total = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
    assert (failed, total) == (3, 20)


def test_one_new_point_per_series_beside_long_stored_histories(engine):
    # the batch's key range spans every stored point of 40 series: the stored keys are looked up
    # one by one instead of read back by range; restated points are still found and updated
    history = [{"series_id": s, "ts": T.replace(hour=h), "value": float(h)} for s in range(1, 41) for h in range(10)]
    with engine.begin() as conn:
        assert upsert(conn, metric_points, history) == 400
    batch = [{"series_id": s, "ts": T.replace(hour=12), "value": 1.0} for s in range(1, 41)]
    batch += [{"series_id": s, "ts": T.replace(hour=3), "value": 99.0} for s in (2, 7)]  # restated
    batch += [{"series_id": 5, "ts": T.replace(hour=4), "value": 4.0}]  # unchanged
    with engine.begin() as conn:
        assert upsert(conn, metric_points, batch) == 42
        assert upsert(conn, metric_points, batch) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_points)).scalar_one() == 440
        assert conn.execute(sa.select(sa.func.sum(metric_points.c.value))).scalar_one() == 40 * 45 + 40 + 2 * (99 - 3)


@pytest.mark.parametrize("width", [0, 3], ids=["ids-out-of-order", "ids-ascending"])
def test_stored_rows_anywhere_in_the_batches_are_cut_out_of_the_new_rows(engine, monkeypatch, width):
    # batches of 7: stored rows first, last, in runs and alone in a batch; the new rows around
    # them are written once each, the restated ones updated, the unchanged ones left alone
    # ("reference:10" sorts before "reference:2": batches whose keys do not ascend are matched
    # to the stored rows another way than ascending ones)
    import store.writes

    monkeypatch.setattr(store.writes, "BATCH", 7)

    def run(i, status="SUCCEEDED"):
        return {**_run(i, status), "run_id": f"reference:{i:0{width}d}"}

    stored = {0, 1, 6, 7, 10, 11, 12, 13, 20, 27, 29}
    restated = {1, 7, 12, 29}
    with engine.begin() as conn:
        assert upsert(conn, runs, [run(i, "FAILED" if i in restated else "SUCCEEDED") for i in sorted(stored)]) == 11
    batch = [run(i) for i in range(30)]
    with engine.begin() as conn:
        assert upsert(conn, runs, batch) == 30 - len(stored) + len(restated)
        assert upsert(conn, runs, batch) == 0
    with engine.connect() as conn:
        got = conn.execute(sa.select(runs.c.run_id, runs.c.status)).all()
    assert sorted(got) == sorted((f"reference:{i:0{width}d}", "SUCCEEDED") for i in range(30))
