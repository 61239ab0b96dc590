"""Chart builders: pure functions, checked on small hand-made frames."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from dashboard import charts

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _grid_cells(fig) -> dict[tuple[str, int], str]:
    """``{(pipeline, position): status}`` read back from a health grid figure."""
    heat, statuses = fig.data[0], charts.health_statuses(fig)
    return {
        (y, int(x)): statuses[int(v)]
        for y, row in zip(heat.y, heat.z, strict=True)
        for x, v in zip(heat.x, row, strict=True)
        if v == v  # not NaN: a run in that cell
    }


def test_health_grid_counts_runs_back_from_the_newest_and_colours_by_status():
    recent = pd.DataFrame(
        {
            "pipeline": ["orders", "orders", "orders", "daily"],
            "started_at": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0],
            "status": ["SUCCEEDED", "FAILED", "SUCCEEDED", "RUNNING"],
            "run_id": ["r1", "r2", "r3", "d1"],
        }
    )
    fig = charts.health_grid(recent)
    assert _grid_cells(fig) == {
        ("orders", -2): "SUCCEEDED", ("orders", -1): "FAILED", ("orders", 0): "SUCCEEDED",
        ("daily", 0): "RUNNING",  # the newest (only) run of "daily"
    }
    # the legend: one entry per status shown, in its colour; the heatmap draws the same colours
    assert [(t.name, t.marker.color) for t in fig.data[1:]] == [
        ("succeeded", charts.STATUS_COLORS["SUCCEEDED"]), ("failed", charts.STATUS_COLORS["FAILED"]),
        ("running", charts.STATUS_COLORS["RUNNING"]),
    ]
    heat = fig.data[0]
    # z = 0, 1, 2 each fall in a flat band of the colour scale
    assert (heat.zmin, heat.zmax) == (-0.5, 2.5)
    assert [c for _, c in heat.colorscale] == [charts.STATUS_COLORS[s] for s in ("SUCCEEDED", "FAILED", "RUNNING") for _ in (0, 1)]
    assert heat.text[1][1] == "orders failed<br>2026-11-20 01:00 UTC<br>r2"


def test_labels_from_data_are_escaped_for_plotly():
    recent = pd.DataFrame(
        {"pipeline": ["<b>x</b>"], "started_at": [T0], "status": ["FAILED"], "run_id": ["<script>alert(1)</script>"]}
    )
    fig = charts.health_grid(recent)
    assert list(fig.data[0].y) == ["&lt;b&gt;x&lt;/b&gt;"]
    assert fig.data[0].text[0][0] == "&lt;b&gt;x&lt;/b&gt; failed<br>2026-11-20 00:00 UTC<br>&lt;script&gt;alert(1)&lt;/script&gt;"


def test_runs_by_status_stacks_succeeded_failed_and_the_rest():
    daily = pd.DataFrame(
        {"day": pd.to_datetime(["2026-11-01", "2026-11-01", "2026-11-02"]), "pipeline": ["a", "b", "a"],
         "runs": [10, 5, 8], "succeeded": [9, 4, 8], "failed": [1, 0, 0]}
    )
    fig = charts.runs_by_status(daily)
    values = {t.name: list(t.y) for t in fig.data}
    assert values == {"succeeded": [13, 8], "failed": [1, 0], "other": [1, 0]}
    assert fig.layout.barmode == "stack"


def test_duration_trend_draws_p50_and_p95_per_pipeline_and_marks_anomalies():
    daily = pd.DataFrame(
        {"day": pd.to_datetime(["2026-11-01", "2026-11-02"]), "pipeline": ["a", "a"],
         "duration_p50": [10.0, 11.0], "duration_p95": [20.0, 40.0]}
    )
    marks = pd.DataFrame(
        {"window_start": [datetime(2026, 11, 2, 5, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)], "pipeline": ["a", None],
         "observed": [41.0, 7.0], "expected": [20.0, 5.0], "subject": ["a p95", "all"], "severity": ["high", "low"]}
    )
    fig = charts.duration_trend(daily, marks)
    assert [t.name for t in fig.data] == ["a p95", "a p50", "duration anomaly"]
    assert list(fig.data[0].y) == [20.0, 40.0]
    # on the pipeline's line at that day; without a pipeline, at the observed value
    assert list(fig.data[2].y) == [40.0, 7.0]
    assert fig.data[2].text[0] == "a p95 (high): observed 41, expected 20"
    assert all(t.type == "scatter" for t in fig.data)  # SVG, not WebGL


def test_cost_stacked_keeps_the_top_keys_and_folds_the_rest_into_other():
    by_day = pd.DataFrame(
        {"day": pd.to_datetime(["2026-11-01"] * 3 + ["2026-11-02"] * 3), "key": ["S3", "Glue", "Lambda"] * 2,
         "cost": [5.0, 10.0, 1.0, 6.0, 12.0, 2.0]}
    )
    fig = charts.cost_stacked(by_day, "service", top=2)
    assert [t.name for t in fig.data] == ["Glue", "S3", "other"]
    assert list(fig.data[2].y) == [1.0, 2.0]
    assert list(fig.data[0].y) == [10.0, 12.0]


def test_cost_stacked_names_untagged_pipeline_spend():
    by_day = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-01"]), "key": ["", "orders"], "cost": [3.0, 1.0]})
    fig = charts.cost_stacked(by_day, "pipeline")
    assert [t.name for t in fig.data] == ["(untagged)", "orders"]


def test_movers_name_untagged_pipeline_spend_as_the_stacked_chart_does():
    moved = pd.DataFrame({"pipeline": ["", "orders"], "current": [9.0, 2.0], "previous": [5.0, 3.0], "change": [4.0, -1.0],
                          "change_pct": [0.8, -1 / 3]})
    fig = charts.movers(moved, "pipeline")
    by_day = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-01"]), "key": ["", "orders"], "cost": [9.0, 2.0]})
    legend = [t.name for t in charts.cost_stacked(by_day, "pipeline").data]
    assert list(fig.data[0].customdata) == ["orders", "(untagged)"] and "(untagged)" in legend
    # another dimension's blank reads "(none)" on both charts
    assert list(charts.movers(moved.rename(columns={"pipeline": "region"}), "region").data[0].customdata) == ["orders", "(none)"]


def test_forecast_vs_actual_draws_band_mean_and_actual():
    actual = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-02"]), "cost": [100.0, 110.0]})
    points = pd.DataFrame({"day": pd.to_datetime(["2026-11-03"]), "mean": [105.0], "lower": [95.0], "upper": [120.0]})
    fig = charts.forecast_vs_actual(actual, points, level=0.8)
    names = [t.name for t in fig.data]
    assert names == [None, "80% band", "forecast", "actual"]
    assert fig.data[1].fill == "tonexty"
    assert list(fig.data[0].y) == [120.0] and list(fig.data[1].y) == [95.0]


def test_forecast_vs_actual_draws_the_partial_day_apart():
    # 3 Nov is today: 20 so far is not a drop from 110, and the actual line ends on 2 Nov
    actual = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-03"]), "cost": [100.0, 110.0, 20.0]})
    points = pd.DataFrame({"day": pd.to_datetime(["2026-11-03"]), "mean": [105.0], "lower": [95.0], "upper": [120.0]})
    fig = charts.forecast_vs_actual(actual, points, level=0.8, partial_from=date(2026, 11, 3))
    assert [t.name for t in fig.data] == [None, "80% band", "forecast", "actual", "so far (partial)"]
    assert list(fig.data[3].y) == [100.0, 110.0] and list(fig.data[4].y) == [20.0]
    assert fig.data[4].mode == "markers" and fig.data[4].marker.symbol == "circle-open"


def test_run_timeline_shows_queue_time_and_each_attempt():
    steps = pd.DataFrame(
        {
            "stage": ["ingest", "transform", "transform"],
            "attempt": [1, 1, 2],
            "status": ["SUCCEEDED", "FAILED", "SUCCEEDED"],
            "queued_at": [T0, T0 + timedelta(seconds=60), T0 + timedelta(seconds=100)],
            "started_at": [T0 + timedelta(seconds=10), T0 + timedelta(seconds=60), T0 + timedelta(seconds=130)],
            "ended_at": [T0 + timedelta(seconds=60), T0 + timedelta(seconds=90), T0 + timedelta(seconds=200)],
        }
    )
    fig = charts.run_timeline(steps)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["queued"].y) == ["ingest #1", "transform #2"]
    assert list(by_name["queued"].x) == [10_000.0, 30_000.0]
    assert list(by_name["failed"].y) == ["transform #1"]
    assert list(by_name["succeeded"].x) == [50_000.0, 70_000.0]


def test_run_timeline_draws_stages_that_took_no_time_as_markers_in_start_order():
    """Issue #21: zero-length Step Functions stages were full-width bars in alphabetical order."""
    steps = pd.DataFrame(
        {
            "stage": ["Validate", "Load", "Choice"],
            "attempt": [1, 1, 1],
            "status": ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"],
            "queued_at": [None, None, None],
            "started_at": [T0, T0 + timedelta(seconds=40), T0 + timedelta(seconds=40)],
            "ended_at": [T0 + timedelta(seconds=40), T0 + timedelta(seconds=100), T0 + timedelta(seconds=40)],
        }
    )
    fig = charts.run_timeline(steps)
    by_name = {t.name: t for t in fig.data}
    # top to bottom as they started (plotly draws a category array bottom-up), ties in stored order
    assert list(reversed(fig.layout.yaxis.categoryarray)) == ["Validate #1", "Load #1", "Choice #1"]
    assert list(by_name["no duration"].y) == ["Choice #1"] and by_name["no duration"].mode == "markers"
    assert list(by_name["succeeded"].y) == ["Validate #1", "Load #1"]
    assert list(by_name["succeeded"].x) == [40_000.0, 60_000.0]  # true lengths, none stretched over the axis


def test_movers_colours_increases_red_and_decreases_green():
    frame = pd.DataFrame({"service": ["Glue", "S3"], "current": [30.0, 5.0], "previous": [10.0, 8.0], "change": [20.0, -3.0]})
    fig = charts.movers(frame, "service")
    assert list(fig.data[0].y) == ["S3", "Glue"]  # largest at the top
    assert list(fig.data[0].marker.color) == ["#2e9e5b", "#d62728"]


def test_empty_frames_give_a_figure_that_says_so():
    fig = charts.cost_stacked(pd.DataFrame(columns=["day", "key", "cost"]), "service")
    assert fig.layout.annotations[0].text == "no data in this window"


def test_collector_api_cost_sums_per_day_and_source():
    passes = pd.DataFrame(
        {"started_at": [T0, T0 + timedelta(hours=2), T0], "source": ["ce", "ce", "logs"],
         "api_cost_usd": [0.03, 0.03, 0.0], "api_calls": [3, 3, 2]}
    )
    fig = charts.collector_api_cost(passes)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["ce"].y) == [0.06]
    assert list(by_name["ce"].customdata) == [6]


def test_collector_api_cost_spans_the_window_with_day_wide_bars():
    # passes on one day of a 90-day window: the axis is the window's days, the bar one day wide
    # (plotly sized a lone bar to the whole plot, and its ticks read "00:00:00 / Nov 20, 2026")
    passes = pd.DataFrame({"started_at": [T0 + timedelta(hours=1)], "source": ["ce"], "api_cost_usd": [0.03], "api_calls": [3]})
    start, end = date(2026, 8, 23), date(2026, 11, 21)
    fig = charts.collector_api_cost(passes, window=(start, end))
    lo, hi = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert (lo, hi) == (pd.Timestamp(start) - timedelta(hours=12), pd.Timestamp(end) - timedelta(hours=12))
    assert fig.layout.xaxis.tickformat == "%b %d"
    assert fig.data[0].width == 0.8 * 86_400_000
    assert pd.Timestamp(fig.data[0].x[0]) == pd.Timestamp("2026-11-20")


def _every_chart() -> dict[str, object]:
    days = pd.to_datetime(["2026-11-01", "2026-11-02"])
    daily = pd.DataFrame(
        {"day": days, "pipeline": ["a", "a"], "runs": [3, 4], "succeeded": [3, 3], "failed": [0, 1],
         "duration_p50": [10.0, 11.0], "duration_p95": [20.0, 40.0], "records_out": [100, 90]}
    )
    marks = pd.DataFrame(
        {"window_start": [datetime(2026, 11, 2, 5, tzinfo=UTC)], "pipeline": ["a"], "observed": [41.0], "expected": [20.0],
         "subject": ["a p95"], "severity": ["high"]}
    )
    recent = pd.DataFrame({"pipeline": ["a", "b"], "started_at": [T0, T0], "status": ["FAILED", "SUCCEEDED"], "run_id": ["r1", "r2"]})
    steps = pd.DataFrame(
        {"stage": ["ingest"], "attempt": [1], "status": ["SUCCEEDED"], "queued_at": [T0],
         "started_at": [T0 + timedelta(seconds=10)], "ended_at": [T0 + timedelta(seconds=60)]}
    )
    by_day = pd.DataFrame({"day": days, "key": ["S3", ""], "cost": [1.0, 2.0]})
    moved = pd.DataFrame({"service": ["S3"], "current": [3.0], "previous": [1.0], "change": [2.0]})
    points = pd.DataFrame({"day": days, "mean": [1.0, 2.0], "lower": [0.5, 1.5], "upper": [1.5, 2.5]})
    actual = pd.DataFrame({"day": days, "cost": [1.0, 2.0]})
    unit = pd.DataFrame({"pipeline": ["a"], "cost_per_run": [0.25]})
    evb = pd.DataFrame({"pipeline": ["a"], "estimate": [1.0], "billed": [2.0]})
    passes = pd.DataFrame({"started_at": [T0], "source": ["ce"], "api_cost_usd": [0.03], "api_calls": [3]})
    return {
        "health_grid": charts.health_grid(recent),
        "runs_by_status": charts.runs_by_status(daily),
        "duration_trend": charts.duration_trend(daily, marks),
        "throughput_trend": charts.throughput_trend(daily, marks),
        "run_timeline": charts.run_timeline(steps),
        "cost_stacked": charts.cost_stacked(by_day, "service"),
        "movers": charts.movers(moved, "service"),
        "forecast_vs_actual": charts.forecast_vs_actual(actual, points, level=0.8),
        "cost_per_run": charts.cost_per_run(unit),
        "estimate_vs_bill": charts.estimate_vs_bill(evb),
        "collector_api_cost": charts.collector_api_cost(passes),
        "empty": charts.movers(moved.iloc[:0], "service"),
    }


def test_every_chart_is_a_valid_plotly_figure():
    # the builders skip plotly's validation for speed: full validation here instead
    for name, fig in _every_chart().items():
        spec = fig.to_dict()
        validated = go.Figure(spec).to_dict()  # raises on an unknown property or a bad value
        assert validated["data"] == [] or len(validated["data"]) == len(spec["data"]), name
        assert spec["layout"]["template"] == {}, name  # no named template deep-copied into each figure


def test_times_are_sent_as_naive_utc():
    # plotly.js reads no UTC offsets: tz-aware times go out as UTC wall-clock times
    spec = json.loads(pio.to_json(_every_chart()["run_timeline"], validate=False))
    assert spec["data"][0]["base"] == ["2026-11-20T00:00:00.000000"]
    assert spec["data"][1]["base"] == ["2026-11-20T00:00:10.000000"]


def test_trends_name_the_anomalous_and_slowest_pipelines_and_fold_the_rest_into_one_grey_band():
    days = pd.to_datetime(["2026-11-01", "2026-11-02"])
    names = ["a", "b", "c", "d"]
    daily = pd.DataFrame(
        {"day": list(days) * 4, "pipeline": [n for n in names for _ in days],
         "duration_p50": [1.0, 2.0, 10.0, 11.0, 5.0, 6.0, 3.0, 3.0],
         "duration_p95": [2.0, 3.0, 20.0, 22.0, 9.0, 8.0, 4.0, 4.0],
         "records_out": [100, 90, 5, 6, 50, 40, 70, 80]}
    )
    # d has an anomaly: named although it is neither the slowest nor the busiest
    marks = pd.DataFrame(
        {"window_start": [datetime(2026, 11, 2, tzinfo=UTC)], "pipeline": ["d"], "observed": [4.0], "expected": [1.0],
         "subject": ["d p95"], "severity": ["high"]}
    )
    fig = charts.duration_trend(daily, marks, top=2)
    band = ["2 other pipelines: highest", "2 other pipelines: range and median", "2 other pipelines: median"]
    assert [t.name for t in fig.data] == [*band, "b p95", "b p50", "d p95", "d p50", "duration anomaly"]
    # a (p95 2, 3) and c (9, 8): per day the band spans the two, the median line runs between them
    high, low, median = fig.data[:3]
    assert [list(high.y), list(low.y), list(median.y)] == [[9.0, 8.0], [2.0, 3.0], [5.5, 5.5]]
    # the days are not sent one a point: the first one and a day's step in ms
    assert {(t.x0, t.dx, t.x) for t in fig.data[:7]} == {("2026-11-01 00:00", 86_400_000, None)}
    assert (low.fill, high.hoverinfo, low.hoverinfo) == ("tonexty", "skip", "skip")
    # one legend entry (the band's), whose click hides band and median
    assert [t.showlegend for t in fig.data[:3]] == [False, None, False]
    assert {t.legendgroup for t in fig.data[:3]} == {"others"}
    # the median's hover: how many of the others ran that day, and their range
    assert median.customdata.tolist() == [[2, 2.0, 9.0], [2, 3.0, 8.0]]
    assert median.hovertemplate.startswith("%{customdata[0]:d} other pipeline(s): median %{y:,.4g} s p95")
    assert list(fig.data[-1].y) == [4.0]  # the mark sits on d's line

    fig = charts.throughput_trend(daily, None, top=2)
    assert [t.name for t in fig.data] == [*band, "a", "d"]  # the most records out
    high, low, median = fig.data[:3]
    # b (5, 6) and c (50, 40)
    assert [list(high.y), list(low.y), list(median.y)] == [[50.0, 40.0], [5.0, 6.0], [27.5, 23.0]]
    # a few pipelines: every one named, no band
    assert [t.name for t in charts.throughput_trend(daily[daily["pipeline"].isin(["a", "b"])], None, top=2).data] == ["a", "b"]


def test_the_others_band_is_three_traces_of_one_point_a_bucket_however_many_pipelines():
    hours = pd.date_range("2026-11-13", periods=168, freq="h")
    many = pd.DataFrame([
        {"day": h, "pipeline": f"p{i:02d}", "duration_p50": float(i), "duration_p95": float(i + (k % 3)), "records_out": i * 10}
        for i in range(40) for k, h in enumerate(hours)
        if not (i == 0 and k == 5)  # p00 did not run in the sixth hour
    ])
    many.loc[(many["pipeline"] == "p01") & (many["day"] == hours[7]), "duration_p95"] = None  # nor finish one in the eighth
    fig = charts.duration_trend(many, None, bucket="hour")
    others = fig.data[:3]
    assert [t.name for t in others] == [f"34 other pipelines: {x}" for x in ("highest", "range and median", "median")]
    assert all(len(t.y) == 168 and t.x is None for t in others)  # 168 values a trace, not 34 x 168
    assert (others[0].x0, others[0].dx) == ("2026-11-13 00:00", 3_600_000)
    assert len(fig.data) == 3 + 2 * charts.FOCUS
    # the named six are the slowest (p34..p39); the others are p00..p33, each at i + (hour % 3)
    high, low, median = others
    count = median.customdata[:, 0].tolist()
    assert count[5] == 33 and count[7] == 33 and count.count(34) == 166
    assert (low.y[0], high.y[0], median.y[0]) == (0.0, 33.0, 16.5)
    assert (low.y[5], high.y[5], median.y[5]) == (3.0, 35.0, 19.0)  # p00 missing: p01..p33 at i + 2
    assert (low.y[7], high.y[7], median.y[7]) == (1.0, 34.0, 18.0)  # p01 missing: p00, p02..p33 at i + 1


def test_throughput_names_only_pipelines_with_records_out():
    # the demo's Glue and Airflow pipelines report no records out: named, they were legend entries
    # with no line, two of the six slots, and counted among "other pipelines"
    days = pd.to_datetime(["2026-11-01", "2026-11-02"])
    rows = [(d, p, v) for d in days for p, v in (("a", 10.0), ("b", 20.0), ("c", 30.0), ("glue", None), ("pp_fail", None))]
    daily = pd.DataFrame(rows, columns=["day", "pipeline", "records_out"])
    assert [t.name for t in charts.throughput_trend(daily).data] == ["a", "b", "c"]
    fig = charts.throughput_trend(daily, top=1)
    assert [t.name for t in fig.data if t.showlegend is not False] == ["2 other pipelines: range and median", "c"]


def test_throughput_marks_points_only_where_they_stand_apart():
    week = pd.date_range("2026-11-13", periods=168, freq="h")
    hourly = pd.DataFrame({"day": week, "pipeline": "a", "records_out": range(168)})
    assert [t.mode for t in charts.throughput_trend(hourly, bucket="hour").data] == ["lines"]
    month = hourly.iloc[:30].assign(day=pd.date_range("2026-10-15", periods=30))
    assert [t.mode for t in charts.throughput_trend(month).data] == ["lines+markers"]


def test_long_category_labels_are_turned_or_upright_without_automargin():
    long = pd.DataFrame({"pipeline": [f"pipeline_with_a_long_name_{i}" for i in range(8)], "cost_per_run": [1.0] * 8,
                         "estimate": [1.0] * 8, "billed": [2.0] * 8})
    # eight of them do not fit across even turned 35 degrees (their boxes would overlap): upright
    for fig in (charts.cost_per_run(long), charts.estimate_vs_bill(long)):
        assert fig.layout.xaxis.tickangle == -90
        assert fig.layout.xaxis.automargin is False  # plotly would measure and draw twice
        assert fig.layout.margin.b >= 7 * len("pipeline_with_a_long_name_0")
    # three fit turned 35 degrees (27 characters x 7 px x cos 35 x 3 <= 520 px)
    for fig in (charts.cost_per_run(long.head(3)), charts.estimate_vs_bill(long.head(3))):
        assert fig.layout.xaxis.tickangle == -35
        assert fig.layout.margin.b >= 7 * len("pipeline_with_a_long_name_0") * 0.5
    short = long.head(2).assign(pipeline=["a", "b"])
    assert charts.cost_per_run(short).layout.xaxis.tickangle is None


def test_trend_lines_send_values_on_the_bucket_grid_with_gaps_joined():
    days = pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-04"])
    daily = pd.DataFrame({"day": [*days, days[0], days[2]], "pipeline": ["a", "a", "a", "b", "b"],
                          "duration_p50": [1.0, 2.0, 3.0, 4.0, 5.0], "duration_p95": [2.0, 3.0, 4.0, 8.0, 9.0],
                          "records_out": [10, 20, 30, 40, 50]})
    fig = charts.throughput_trend(daily)
    a, b = fig.data
    # four days from Nov 1: a ran on none of Nov 3, b on Nov 1 and 4 only; the line joins over them
    assert (a.x0, a.dx, a.connectgaps) == ("2026-11-01 00:00", 86_400_000, True)
    assert [None if v != v else v for v in a.y] == [10.0, 20.0, None, 30.0]
    assert [None if v != v else v for v in b.y] == [40.0, None, None, 50.0]
    # the band's hover rows sit on the same grid (top=1: b, the slowest, is named; a is "the others")
    median = charts.duration_trend(daily, top=1).data[2]
    assert median.customdata.shape == (4, 3) and median.customdata[3].tolist() == [1.0, 4.0, 4.0]
    assert [None if v != v else v for v in median.y] == [2.0, 3.0, None, 4.0]
    # today's partial counts keep their own dates (a few points)
    part = charts.throughput_trend(daily, partial_from=days[2])
    assert [t.name for t in part.data] == ["a", "b", "so far (partial)"]
    assert len(part.data[0].y) == 2 and list(part.data[2].x) == [days[2].to_datetime64()] * 2
