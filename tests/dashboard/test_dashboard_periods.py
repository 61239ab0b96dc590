"""The period that is not over (today, or this hour), hourly buckets for short windows, and the
window's end ("Up to"): chart specs and the filters' arithmetic, on hand-made frames."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go

from dashboard import charts
from dashboard.state import RANGE_LENGTHS, Filters, partial_bucket, window

NOW = datetime(2026, 11, 20, 9, 41, tzinfo=UTC)
DAYS = pd.to_datetime(["2026-11-18", "2026-11-19", "2026-11-20"])


def _filters(range_key: str, to: date | None) -> Filters:
    start, end, ps, pe = window(range_key, to, NOW)
    return Filters(range_key, start, end, ps, pe, None, None, NOW)


def test_the_window_end_says_which_bucket_is_not_over():
    live = _filters("30d", None)
    assert (live.bucket, live.partial_from, live.partial_day) == ("day", datetime(2026, 11, 20, tzinfo=UTC), date(2026, 11, 20))
    short = _filters("24h", None)
    assert (short.bucket, short.partial_from) == ("hour", datetime(2026, 11, 20, 9, tzinfo=UTC))
    assert _filters("7d", None).bucket == "hour" and _filters("90d", None).bucket == "day"
    # "Up to" a past day: the window ends at midnight, every bucket in it is whole
    past = _filters("24h", date(2026, 11, 18))
    assert past.end == datetime(2026, 11, 19, tzinfo=UTC)
    assert (past.partial_from, past.partial_day) == (None, None)
    assert partial_bucket(datetime(2026, 11, 20, 10, tzinfo=UTC), timedelta(hours=1)) is None
    assert set(RANGE_LENGTHS) >= {"24h", "7d"}


def _partial_marks(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.name == "partial"]


def test_throughput_draws_the_day_not_over_apart_from_the_lines():
    daily = pd.DataFrame({"day": list(DAYS) * 2, "pipeline": ["a"] * 3 + ["b"] * 3, "records_out": [100, 110, 9, 50, 55, 4]})
    fig = charts.throughput_trend(daily, partial_from=datetime(2026, 11, 20, tzinfo=UTC), window=(DAYS[0], DAYS[-1] + timedelta(days=1)))
    lines = {t.name: list(t.y) for t in fig.data if t.mode == "lines+markers"}
    assert lines == {"a": [100, 110], "b": [50, 55]}  # no drop to 9 and 4 at the end of the lines
    so_far = [t for t in fig.data if t.name == "so far (partial)"][0]
    assert list(so_far.y) == [9.0, 4.0] and so_far.marker.symbol == "circle-open"
    assert _partial_marks(fig) == ["today so far"]
    band = fig.layout.shapes[0]
    assert (pd.Timestamp(band.x0), pd.Timestamp(band.x1)) == (pd.Timestamp("2026-11-19 12:00"), pd.Timestamp("2026-11-20 12:00"))
    # one tick a day, as dates: never ticks like 23:59:59.9995
    assert (fig.layout.xaxis.dtick, fig.layout.xaxis.tickformat) == (86_400_000, "%b %d")
    # without a partial day nothing is marked
    whole = charts.throughput_trend(daily)
    assert _partial_marks(whole) == [] and not any(t.name == "so far (partial)" for t in whole.data)


def test_runs_per_hour_with_the_hour_not_over_faint():
    hours = pd.date_range("2026-11-19 10:00", "2026-11-20 09:00", freq="h")
    daily = pd.DataFrame({"day": hours, "pipeline": "a", "runs": 4, "succeeded": 3, "failed": 1})
    fig = charts.runs_by_status(daily, bucket="hour", window=(NOW - timedelta(hours=24), NOW), partial_from=datetime(2026, 11, 20, 9, tzinfo=UTC))
    assert fig.layout.title.text == "Runs per hour"
    opacity = fig.data[0].marker.opacity
    assert list(opacity[:-1]) == [1.0] * 23 and opacity[-1] == charts.PARTIAL_OPACITY
    assert _partial_marks(fig) == ["this hour so far"]
    axis = fig.layout.xaxis
    # 25 hourly buckets (09:00 yesterday is cut too) in at most ten ticks, three hours apart
    assert axis.dtick == 3 * 3_600_000 and axis.tickformat == "%a %H:%M"
    assert [pd.Timestamp(x) for x in axis.range] == [pd.Timestamp("2026-11-19 08:30"), pd.Timestamp("2026-11-20 09:30")]


def test_cost_bars_of_days_not_over_are_faint_under_one_band():
    by_day = pd.DataFrame({"day": list(DAYS), "key": "S3", "cost": [10.0, 9.0, 2.0]})
    fig = charts.cost_stacked(by_day, "service", partial_from=date(2026, 11, 19))
    assert list(fig.data[0].marker.opacity) == [1.0, charts.PARTIAL_OPACITY, charts.PARTIAL_OPACITY]
    assert _partial_marks(fig) == ["not over (partial)"]
    assert pd.Timestamp(fig.layout.shapes[0].x1) == pd.Timestamp("2026-11-20 12:00")
    assert _partial_marks(charts.cost_stacked(by_day, "service", partial_from=date(2026, 11, 20))) == ["today so far"]


def test_partial_charts_are_valid_plotly_figures():
    daily = pd.DataFrame({"day": list(DAYS), "pipeline": "a", "runs": 2, "succeeded": 2, "failed": 0,
                          "duration_p50": 1.0, "duration_p95": 2.0, "records_out": [5, 6, 1]})
    kw = {"partial_from": datetime(2026, 11, 20, tzinfo=UTC), "window": (DAYS[0], DAYS[-1] + timedelta(days=1))}
    for fig in (charts.runs_by_status(daily, **kw), charts.duration_trend(daily, **kw), charts.throughput_trend(daily, **kw),
                charts.cost_stacked(daily.assign(key="S3", cost=1.0), "service", partial_from=date(2026, 11, 20), window=kw["window"])):
        go.Figure(fig.to_dict())  # raises on an unknown property or a bad value
