from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from store.schema import runs
from store.writes import upsert


def _row(**kw):
    base = dict(run_id="r1", pipeline="p", source="reference", status="SUCCEEDED")
    base.update(kw)
    return base


def test_whole_floats_and_nan_in_integer_columns_are_stored(engine):
    # pandas turns a nullable int column into floats; the store takes them as ints / NULL
    with engine.begin() as conn:
        assert upsert(conn, runs, [_row(records_in=120.0, records_out=math.nan, attempt=2.0)]) == 1
        got = conn.execute(sa.select(runs.c.records_in, runs.c.records_out, runs.c.attempt)).one()
    assert tuple(got) == (120, None, 2)
    assert type(got[0]) is int


def test_fractional_value_in_integer_column_is_refused(engine):
    with pytest.raises((ValueError, sa.exc.StatementError, sa.exc.DataError, sa.exc.IntegrityError)):
        with engine.begin() as conn:
            upsert(conn, runs, [_row(records_in=1.5)])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one() == 0
