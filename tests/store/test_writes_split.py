"""store.writes.upsert's split of a batch into new, restated and unchanged rows (issue 22):
stored rows read back in any order, keys repeated in an ascending batch, values that only look
equal, key columns anywhere in the caller's rows, a key written meanwhile by another writer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import store.writes
from store.schema import metric_points, runs
from store.writes import _KeyProbe, upsert

T = datetime(2026, 11, 20, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


class _Answer:
    """A cursor that answers the probe's query with the given stored rows, in that order."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def execute(self, sql, params=None, binary=False):
        pass

    def fetchall(self) -> list[tuple]:
        return list(self.rows)


def _probe(answer: list[tuple]) -> _KeyProbe:
    return _KeyProbe(
        _Answer(answer), lambda name: f'"{name}"', "metric_points", ["series_id", "ts"], ["int4", "timestamptz"],
        ["value"], 3,
    )


# a batch of one series' hours 0-29 without 5, 6 and 20; stored: some of its keys (1, 8 and 28
# with other values) and two keys in its range that it does not hold (5 and 20)
HOURS = [h for h in range(30) if h not in (5, 6, 20)]
STORED = [0, 1, 2, 5, 7, 8, 15, 20, 28, 29]
RESTATED = [1, 8, 28]


def _point(h: int, value: float | None = None) -> tuple:
    return (1, T + timedelta(hours=h), float(h) if value is None else value)


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
@pytest.mark.parametrize("batch_order", ["ascending", "shuffled"])
def test_stored_rows_read_back_in_any_order_are_matched_to_the_batch(order, batch_order):
    # the range scan returns rows in the table's physical order (a bitmap heap scan), not the key's
    stored = [_point(h, h + 0.5 if h in RESTATED else None) for h in STORED]
    if order == "descending":
        stored.reverse()
    elif order == "shuffled":
        random.Random(22).shuffle(stored)
    batch = [_point(h) for h in HOURS]
    if batch_order == "shuffled":
        random.Random(7).shuffle(batch)
    held, changed = _probe(stored).split(batch)
    at = {(row[1] - T) // timedelta(hours=1): i for i, row in enumerate(batch)}
    assert held == sorted(at[h] for h in STORED if h in at)
    assert sorted(changed) == [_point(h) for h in RESTATED]


def test_stored_keys_before_after_and_at_the_end_of_the_batch():
    batch = [_point(h) for h in (3, 4, 9)]
    assert _probe([_point(9), _point(4)]).split(batch) == ([1, 2], [])
    # stored before the batch's first key and after its last: in the range read, not in the batch
    assert _probe([_point(2), _point(9, 1.0), _point(10)]).split(batch) == ([2], [_point(9)])


def test_naive_times_against_stored_aware_ones():
    # naive and aware times neither order nor compare equal: nothing is matched (the COPY of the
    # batch as new rows would fail on the stored keys and the batch be merged); a batch mixing
    # them has no key range: the probe cannot tell
    naive = [(1, (T + timedelta(hours=h)).replace(tzinfo=None), float(h)) for h in range(3)]
    assert _probe([_point(1)]).split(naive) == ([], [])
    assert _probe([_point(1)]).split([_point(0), naive[1]]) is None


def test_times_in_another_zone_compare_as_instants(engine):
    # 12:00 at +02:00 is the stored 10:00 UTC (unchanged); 10:00 at +02:00 is another time,
    # though its clock reading is the stored one's
    start = T.replace(hour=10)
    run = {"run_id": "r1", "pipeline": "p", "source": "reference", "status": "SUCCEEDED", "started_at": start}
    with engine.begin() as conn:
        assert upsert(conn, runs, [run]) == 1
        assert upsert(conn, runs, [{**run, "started_at": start.astimezone(PLUS2)}]) == 0
        assert upsert(conn, runs, [{**run, "started_at": start.replace(tzinfo=PLUS2)}]) == 1
        got = conn.execute(sa.select(runs.c.started_at)).scalar_one()
    assert got.replace(tzinfo=got.tzinfo or UTC) == start - timedelta(hours=2)


def test_an_int_for_a_stored_float_is_unchanged(engine):
    points = [{"series_id": 1, "ts": T + timedelta(hours=h), "value": float(h)} for h in range(4)]
    with engine.begin() as conn:
        assert upsert(conn, metric_points, points) == 4
        assert upsert(conn, metric_points, [{**p, "value": int(p["value"])} for p in points]) == 0


def test_a_key_repeated_in_an_ascending_batch(engine):
    # the rows ascend (the repeated key's values differ), so the batch is walked in order: one
    # copy is matched to the stored row, the other goes to the COPY of new rows, which fails,
    # and the batch is merged
    stored = [{"series_id": 1, "ts": T + timedelta(hours=h), "value": 5.0} for h in range(3)]
    batch = [
        {"series_id": 1, "ts": T, "value": 5.0},  # unchanged
        {"series_id": 1, "ts": T + timedelta(hours=1), "value": 1.0},  # stored, twice
        {"series_id": 1, "ts": T + timedelta(hours=1), "value": 2.0},
        {"series_id": 1, "ts": T + timedelta(hours=3), "value": 3.0},  # new, twice
        {"series_id": 1, "ts": T + timedelta(hours=3), "value": 4.0},
    ]
    with engine.begin() as conn:
        assert upsert(conn, metric_points, stored) == 3
        upsert(conn, metric_points, batch)
        got = dict(conn.execute(sa.select(metric_points.c.ts, metric_points.c.value)).all())
    got = {ts.replace(tzinfo=ts.tzinfo or UTC).hour: v for ts, v in got.items()}
    assert got.keys() == {0, 1, 2, 3}
    assert (got[0], got[2]) == (5.0, 5.0)
    assert got[1] in (1.0, 2.0) and got[3] in (3.0, 4.0)


def test_key_columns_anywhere_in_the_rows_and_updated_at_between_them(engine):
    # the caller's column order is not the table's: key last, updated_at in the middle (never
    # compared: a row whose only change is its updated_at is left alone)
    def run(i, status="SUCCEEDED", stamp=T):
        return {"status": status, "updated_at": stamp, "pipeline": "p", "source": "reference", "run_id": f"r{i}"}

    with engine.begin() as conn:
        assert upsert(conn, runs, [run(i) for i in range(5)]) == 5
        assert upsert(conn, runs, [run(i, stamp=T + timedelta(days=1)) for i in range(5)]) == 0
        assert upsert(conn, runs, [run(i, "FAILED" if i in (1, 3) else "SUCCEEDED") for i in range(7)]) == 4
        got = conn.execute(sa.select(runs.c.run_id, runs.c.status).order_by(runs.c.run_id)).all()
    assert [tuple(r) for r in got] == [(f"r{i}", "FAILED" if i in (1, 3) else "SUCCEEDED") for i in range(7)]
    points = [{"value": float(h), "ts": T + timedelta(hours=h), "series_id": 2} for h in range(3)]
    with engine.begin() as conn:
        assert upsert(conn, metric_points, points) == 3
        assert upsert(conn, metric_points, points) == 0
        assert upsert(conn, metric_points, [{**points[1], "value": 9.0}, *points[2:]]) == 1


@pytest.mark.parametrize("which", [1, 2], ids=["first-batch", "after-a-batch-with-stored-keys"])
def test_a_key_stored_meanwhile_by_another_writer(engine, monkeypatch, which):
    # the probe read the table before another writer stored one of the batch's keys: the COPY
    # of new rows fails on it and the batch is merged, the other writer's row updated. The
    # first batch of a call is encoded whole first (tried as all new), a batch after one with
    # stored keys only as its new rows: the merge encodes it whole then
    if engine.dialect.name != "postgresql":
        pytest.skip("the probe is PostgreSQL's")
    points = [{"series_id": 3, "ts": T + timedelta(hours=h), "value": float(h)} for h in range(8)]
    with engine.begin() as conn:
        assert upsert(conn, metric_points, [points[0], {**points[4], "value": 40.0}]) == 2  # hour 4 restated below
    before = _KeyProbe.stored
    calls = []

    def stale(self, batch, ascending):
        found = before(self, batch, ascending)
        calls.append(len(found))
        if len(calls) == which:
            with engine.begin() as other:
                other.execute(sa.insert(metric_points), [{**points[4 * which - 2], "value": -1.0}])
        return found

    monkeypatch.setattr(_KeyProbe, "stored", stale)
    monkeypatch.setattr(store.writes, "BATCH", 4)
    with engine.begin() as conn:
        assert upsert(conn, metric_points, points) == 7  # 5 new, hour 4 and the other writer's row updated
    assert calls == [1, 1]
    with engine.connect() as conn:
        got = conn.execute(sa.select(metric_points.c.value).order_by(metric_points.c.ts)).scalars().all()
    assert got == [float(h) for h in range(8)]
