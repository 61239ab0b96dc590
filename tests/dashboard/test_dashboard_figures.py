"""Built figures kept between reruns (``data.figure``, ``data.FigureCache``): never a figure of
other data or other filters, and what the browser gets is what the builder draws."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import plotly.io as pio
import sqlalchemy as sa
from dash_paths import APP
from streamlit.testing.v1 import AppTest

from dashboard import charts, state
from dashboard.data import FigureCache

DAYS = pd.to_datetime(["2026-11-01", "2026-11-02"])


def _daily(runs: tuple[int, int] = (3, 4)) -> pd.DataFrame:
    return pd.DataFrame(
        {"day": DAYS, "pipeline": ["a", "a"], "runs": list(runs), "succeeded": [3, 3], "failed": [0, 1],
         "duration_p50": [10.0, 11.0], "duration_p95": [20.0, 40.0], "records_out": [100, 90]}
    )


def _y(fig, name: str) -> list[float]:
    """A trace's y values as the browser gets them (plotly sends numpy arrays as typed arrays)."""
    trace = next(t for t in json.loads(pio.to_json(fig, validate=False))["data"] if t.get("name") == name)
    y = trace["y"]
    return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist() if isinstance(y, dict) else y


def test_the_cached_figure_sends_what_the_builder_draws():
    marks = pd.DataFrame({"window_start": [datetime(2026, 11, 2, 5, tzinfo=UTC)], "pipeline": ["a"], "observed": [41.0],
                          "expected": [20.0], "subject": ["a p95"], "severity": ["high"]})
    by_day = pd.DataFrame({"day": DAYS, "key": ["S3", ""], "cost": [1.0, 2.0]})
    recent = pd.DataFrame({"pipeline": ["a", "b"], "started_at": [DAYS[0]] * 2, "status": ["FAILED", "SUCCEEDED"], "run_id": ["r1", "r2"]})
    cases = [
        (charts.health_grid, (recent,), {}),
        (charts.runs_by_status, (_daily(),), {"bucket": "day", "partial_from": DAYS[1]}),
        (charts.duration_trend, (_daily(), marks), {}),
        (charts.throughput_trend, (_daily(), marks), {"window": (DAYS[0], DAYS[1] + timedelta(days=1))}),
        (charts.cost_stacked, (by_day, "service"), {"partial_from": DAYS[1].date()}),
        (charts.movers, (pd.DataFrame({"service": ["S3"], "current": [3.0], "previous": [1.0], "change": [2.0]}), "service"), {}),
        (charts.cost_per_run, (pd.DataFrame({"pipeline": ["a"], "cost_per_run": [0.25]}),), {"currency": "EUR"}),
    ]
    cache = FigureCache()
    for builder, args, kwargs in cases:
        want = pio.to_json(builder(*args, **kwargs), validate=False)
        assert pio.to_json(cache.get(builder, *args, **kwargs), validate=False) == want, builder.__name__
        assert pio.to_json(cache.get(builder, *args, **kwargs), validate=False) == want, builder.__name__  # from the cache


def test_a_figure_is_built_again_when_any_input_differs():
    cache = FigureCache()
    first = cache.get(charts.runs_by_status, _daily())
    assert cache.get(charts.runs_by_status, _daily()) is first  # equal frames (another copy, as every cache hit is)
    assert _y(first, "succeeded") == [3, 3]
    other_data = cache.get(charts.runs_by_status, _daily(runs=(3, 9)))
    assert _y(other_data, "other") == [0, 5]
    other_args = cache.get(charts.runs_by_status, _daily(), partial_from=DAYS[1])  # another filter set
    assert other_args is not first and json.loads(pio.to_json(other_args))["layout"]["annotations"][0]["text"] == "today so far"
    other_builder = cache.get(charts.throughput_trend, _daily())
    assert [t["name"] for t in json.loads(pio.to_json(other_builder))["data"]] == ["a"]
    # each is kept beside the others
    assert cache.get(charts.runs_by_status, _daily(runs=(3, 9))) is other_data
    assert cache.get(charts.runs_by_status, _daily()) is not first  # replaced by the (3, 9) frame's figure
    assert _y(cache.get(charts.runs_by_status, _daily()), "other") == [0, 0]


def test_a_frame_changed_after_the_call_is_not_mistaken_for_the_one_cached():
    cache = FigureCache()
    daily = _daily()
    cache.get(charts.runs_by_status, daily)
    daily.loc[1, "runs"] = 10  # the cache kept its own copy
    assert _y(cache.get(charts.runs_by_status, daily), "other") == [0, 6]


def test_the_cache_holds_at_most_size_argument_sets():
    cache = FigureCache(size=2)
    a = cache.get(charts.runs_by_status, _daily(), bucket="day")
    cache.get(charts.runs_by_status, _daily(), bucket="hour")
    assert cache.get(charts.runs_by_status, _daily(), bucket="day") is a  # used last: kept
    cache.get(charts.throughput_trend, _daily())
    assert cache.get(charts.runs_by_status, _daily(), bucket="day") is a
    assert len(cache._items) == 2


def test_unhashable_arguments_are_built_every_time():
    cache = FigureCache()
    window = [DAYS[0], DAYS[1]]  # a list: no key
    fig = cache.get(charts.runs_by_status, _daily(), window=window)
    assert cache.get(charts.runs_by_status, _daily(), window=window) is not fig
    assert not cache._items


def _specs(at: AppTest) -> dict[str, str]:
    """The page's plotly charts, by title: the JSON the browser gets."""
    assert not at.exception, [e.value for e in at.exception]
    return {json.loads(e.proto.spec)["layout"]["title"]["text"]: e.proto.spec for e in at.get("plotly_chart")}


def _open(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if query:
        at.query_params = dict(query)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def test_charts_show_changed_data_once_the_reads_expire_as_before(fresh_filled_db, app_env, monkeypatch):
    import streamlit as st

    from store.db import connect
    from store.schema import runs

    url, _ = fresh_filled_db
    app_env(url)
    now = state.now_minute()
    monkeypatch.setattr(state, "now_minute", lambda: now)  # one window for every run of the test
    before = _specs(_open("views/pipelines.py"))
    assert len(before) == 3 and "Runs per hour" in before
    engine = connect(url)
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.status == "SUCCEEDED", runs.c.started_at >= now - timedelta(days=2),
                                           runs.c.started_at < now - timedelta(hours=2)).limit(1)
        ).scalar_one()
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(status="FAILED"))
    engine.dispose()
    st.cache_data.clear()  # the reads' TTL has passed: the next run reads the changed run
    after = _specs(_open("views/pipelines.py"))
    assert after["Runs per hour"] != before["Runs per hour"]
    st.cache_resource.clear()  # what a server started now draws, without any figure kept
    st.cache_data.clear()
    assert _specs(_open("views/pipelines.py")) == after


def test_a_chart_cached_for_one_filter_set_is_not_drawn_for_another(filled_db, app_env, monkeypatch):
    import streamlit as st

    url, _ = filled_db
    app_env(url)
    now = state.now_minute()
    monkeypatch.setattr(state, "now_minute", lambda: now)
    every = _specs(_open())  # the Overview's health grid, every pipeline
    orders = _specs(_open(query={"pipeline": "orders"}))
    [title] = every
    assert orders[title] != every[title]
    assert _specs(_open()) == every  # and back
    st.cache_resource.clear()
    st.cache_data.clear()
    assert _specs(_open(query={"pipeline": "orders"})) == orders  # as a fresh server draws it
