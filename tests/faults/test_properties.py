"""Property tests (hypothesis, a bounded number of examples) for the two places where a fault
turns into silent loss or double counting:

- the cost importer: any set of CUR line items (repeats, two currencies, non-finite and absurd
  amounts) stores per day and currency exactly what a pandas reference computes (bad amounts
  refused, each line item once);
- the newest-first watermark of the Step Functions collector (``collectors.incremental``): any
  interleaving of overlapping passes (each reads the watermark, sees the source at some moment,
  commits later, in any order) followed by two clean passes stores every execution with its
  final status; none is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from faultbed import history
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.incremental import NewestFirst
from collectors.stepfunctions import STATUS, StepFunctionsCollector
from jobs.import_costs import import_cost_files
from pipepulse.settings import load_settings
from store.schema import cost_daily

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE_ROWS = 40
LIMIT = 1e9  # the importer refuses amounts beyond +-1e9
EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])


# ---- the cost importer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cur_base(shared_dir) -> pa.Table:
    path = shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"
    return pq.ParquetFile(path).read_row_group(0).slice(0, BASE_ROWS)


amounts = st.one_of(
    st.none(),  # keep the real amount
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e12, -3e9]),
)


@EXAMPLES
@given(picks=st.lists(st.integers(0, BASE_ROWS - 1), min_size=1, max_size=60),
       costs=st.lists(amounts, min_size=BASE_ROWS, max_size=BASE_ROWS),
       currencies=st.lists(st.sampled_from(["USD", "EUR"]), min_size=BASE_ROWS, max_size=BASE_ROWS))
def test_cur_import_equals_the_pandas_reference(engine, tmp_path, cur_base, picks, costs, currencies):
    real = cur_base.column("line_item_unblended_cost").to_pylist()
    table = cur_base.set_column(cur_base.column_names.index("line_item_unblended_cost"), "line_item_unblended_cost",
                                pa.array([float(c) if c is not None else v for c, v in zip(costs, real, strict=True)], pa.float64()))
    table = table.set_column(table.column_names.index("line_item_currency_code"), "line_item_currency_code", pa.array(currencies))
    table = table.take(picks)  # repeats: the same line item more than once
    path = tmp_path / "cur.parquet"
    pq.write_table(table, path)
    frame = table.to_pandas()
    with engine.begin() as conn:
        conn.execute(cost_daily.delete())

    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)

    cost = frame["line_item_unblended_cost"]
    good = frame[cost.map(math.isfinite) & (cost.abs() <= LIMIT)]
    good = good.drop_duplicates(["identity_line_item_id", "identity_time_interval"])
    good = good.assign(day=pd.to_datetime(good["line_item_usage_start_date"], utc=True).dt.date)
    want = good.groupby(["day", "line_item_currency_code"])["line_item_unblended_cost"].sum().to_dict()
    with engine.connect() as conn:
        got = {(d, c): float(v) for d, c, v in conn.execute(
            sa.select(cost_daily.c.day, cost_daily.c.currency, sa.func.sum(cost_daily.c.billed_cost))
            .where(cost_daily.c.source == "cur").group_by(cost_daily.c.day, cost_daily.c.currency))}
    assert set(got) == set(want), (sorted(got), sorted(want))
    for key, value in want.items():
        assert math.isfinite(got[key]) and math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-6), (key, got[key], value)
    assert result.rows_rejected == len(frame) - len(frame[cost.map(math.isfinite) & (cost.abs() <= LIMIT)])


# ---- the newest-first watermark under overlapping passes -------------------------------------------

T0 = NOW - timedelta(days=1)


@dataclass
class Execution:
    arn: str
    start: int  # seconds after T0 (ties allowed)
    end: int


class FakeStepFunctions:
    """ListExecutions (newest first, pages of 3), DescribeExecution and GetExecutionHistory of
    the executions started by ``at`` seconds, each RUNNING until its end."""

    def __init__(self, executions: list[Execution], at: int) -> None:
        self.visible = sorted((e for e in executions if e.start <= at), key=lambda e: (-e.start, e.arn))
        self.at = at

    def _shape(self, e: Execution) -> dict[str, Any]:
        out: dict[str, Any] = {"executionArn": e.arn, "name": e.arn.rsplit(":", 1)[-1], "startDate": T0 + timedelta(seconds=e.start),
                               "status": "SUCCEEDED" if e.end <= self.at else "RUNNING"}
        if e.end <= self.at:
            out["stopDate"] = T0 + timedelta(seconds=e.end)
        return out

    def list_executions(self, *, stateMachineArn: str, maxResults: int, nextToken: str | None = None) -> dict[str, Any]:
        offset = int(nextToken or 0)
        page = self.visible[offset:offset + 3]
        out: dict[str, Any] = {"executions": [self._shape(e) for e in page]}
        if offset + 3 < len(self.visible):
            out["nextToken"] = str(offset + 3)
        return out

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:
        return self._shape(next(e for e in self.visible if e.arn == executionArn))

    def get_execution_history(self, *, executionArn: str, maxResults: int, nextToken: str | None = None) -> dict[str, Any]:
        e = next(x for x in self.visible if x.arn == executionArn)
        return {"events": history(T0 + timedelta(seconds=e.start), ended=e.end <= self.at)}


@pytest.fixture(scope="module")
def sfn_collector(tmp_path_factory) -> StepFunctionsCollector:
    config = tmp_path_factory.mktemp("props") / "pipepulse.toml"
    config.write_text("")
    return StepFunctionsCollector(load_settings({"PIPEPULSE_DATABASE_URL": "sqlite://"}, config_path=config), only_configured=False,
                                  lookback=timedelta(days=30), max_history_pages=25)


executions = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 15)), min_size=1, max_size=25)
passes = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(items=executions, plan=passes)
def test_no_interleaving_of_pass_commits_skips_an_execution(sfn_collector, items, plan):
    source = [Execution(f"arn:aws:states:us-east-1:123456789012:execution:etl:e{i}", start, start + dur)
              for i, (start, dur) in enumerate(items)]
    store: dict[str, str] = {}  # run_id -> status; an upsert: the last commit wins
    mark_value: list[str | None] = [None]  # the committed watermark
    # each pass: reads the mark at r, sees the source at r + s, commits at r + s + c
    events = []
    for p, (r, s, c) in enumerate(plan):
        events += [(r, 0, p, "read"), (r + s, 1, p, "see"), (r + s + c, 2, p, "commit")]
    state: dict[int, dict[str, Any]] = {}

    def see(p: int, at: int) -> None:
        mark = state[p]["mark"]
        before = mark.dump()
        batch = SimpleNamespace(runs=[], steps=[])
        sfn_collector._machine(SimpleNamespace(now=T0 + timedelta(seconds=at)), FakeStepFunctions(source, at), batch,
                               "arn:aws:states:us-east-1:123456789012:stateMachine:etl", "etl", mark,
                               {"executions": 0, "histories": 0})
        state[p]["rows"] = {r.run_id: r.status for r in batch.runs}
        state[p]["dump"] = mark.dump() if mark.dump() != before else None

    for at, _, p, kind in sorted(events):
        if kind == "read":
            state[p] = {"mark": NewestFirst.load(mark_value[0])}
        elif kind == "see":
            see(p, at)
        else:
            store.update(state[p]["rows"])
            if state[p]["dump"] is not None:
                mark_value[0] = state[p]["dump"]
    end = max(e.end for e in source) + 1
    for k in range(2):  # the faults cleared: two clean passes
        state[-1] = {"mark": NewestFirst.load(mark_value[0])}
        see(-1, end + k)
        store.update(state[-1]["rows"])
        if state[-1]["dump"] is not None:
            mark_value[0] = state[-1]["dump"]
    want = {f"stepfunctions:{e.arn}": STATUS["SUCCEEDED"] for e in source}
    assert store == want
