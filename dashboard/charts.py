"""Chart builders: pure functions from small DataFrames to plotly figures (no Streamlit, no I/O).

Text that comes from data (pipeline, service and stage names, errors) is escaped before plotly
sees it: plotly renders a few HTML tags in labels, and a name like ``<b>x</b>`` must show as
typed. Lines use SVG (``go.Scatter``), never WebGL, so a browser test can see what was drawn.
"""

from __future__ import annotations

import html
from datetime import date

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pipepulse.vocab import AWAITING_RETRY, CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = [
    "CONFIG",
    "STATUS_COLORS",
    "collector_api_cost",
    "cost_per_run",
    "cost_stacked",
    "duration_trend",
    "estimate_vs_bill",
    "forecast_vs_actual",
    "health_grid",
    "health_statuses",
    "movers",
    "run_timeline",
    "runs_by_status",
    "throughput_trend",
]

STATUS_COLORS = {
    SUCCEEDED: "#2e9e5b",
    FAILED: "#d62728",
    TIMED_OUT: "#8c1c13",
    CANCELLED: "#9e9e9e",
    RUNNING: "#1f77b4",
    QUEUED: "#9ecae1",
    AWAITING_RETRY: "#ff9f1c",
}
PALETTE = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
    "#9d755d", "#bab0ac", "#6b6ecf", "#8ca252",
]
OTHER = "other"
HEIGHT = 320
# what every ``st.plotly_chart(..., config=CONFIG)`` passes to plotly.js (plotly's full mode bar:
# a two-button one measured no faster, bench/README.md)
CONFIG = {"displaylogo": False}
MARKERS_UP_TO = 45  # points of a line drawn with a marker each (more draw as a plain line)
TITLE_LINE = 40  # characters of a chart title on one line (15 px type in a half-width chart at 1024 px)


def _t(value: object) -> str:
    """Data text made safe for plotly labels (shown literally)."""
    return html.escape("" if value is None else str(value), quote=False)


def _dates(values: pd.Series) -> np.ndarray:
    """Times for an axis: naive UTC (plotly.js reads no UTC offsets)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    return values.to_numpy()


def _longest(labels: list[str], default: int = 0) -> int:
    """Characters in the longest of ``labels`` as shown (they are HTML-escaped)."""
    return max((len(html.unescape(x)) for x in labels), default=default)


def _label_margin(labels: list[str]) -> int:
    """A left margin wide enough for ``labels`` as y tick labels (12 px font), so the axis
    needs no automargin (which measures the labels and draws the chart a second time)."""
    return 16 + 7 * _longest(labels, default=4)


def _category_x(labels: list[str]) -> dict:
    """Layout for text categories on x without plotly's automargin (which measures the labels
    and draws the chart a second time): long labels are turned 35 degrees and the bottom margin
    grows with the longest, the legend goes above the plot."""
    longest = _longest(labels)
    n = max(len(labels), 1)
    if longest * 7 * n <= 520:  # they fit side by side
        return {}
    # turned 35 degrees each label still takes cos(35) of its length across; when that does not
    # fit either (the demo's eleven pipelines in a 1024 px window), they stand upright
    angle, drop = (-35, 0.58) if longest * 7 * 0.82 * n <= 520 else (-90, 1.0)
    return {
        "xaxis": {"tickangle": angle},
        "margin": {"b": 24 + int(7 * longest * drop)},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
    }


def _merge(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra``, nested dicts merged (like ``fig.update_layout``)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _figure(traces: list[dict], title: str, *, height: int = HEIGHT, ytitle: str | None = None, **layout) -> go.Figure:
    """A figure from plain trace and layout dicts, without plotly's validation.

    Building a figure property by property validates and copies every value, on every rerun; the
    specs here are checked by the tests
    instead (``test_dashboard_charts``: every builder's figure passes full validation).
    The template is empty with explicit colours: a named template such as "plotly_white" is
    deep-copied into every figure.
    """
    # no automargin by default: it measures the tick labels and draws the chart a second time;
    # numbers and dates fit the fixed margins, text labels get a margin from their length
    xaxis = {"showgrid": True, "gridcolor": "#ebedf0", "zeroline": False, "linecolor": "#d0d3d9", "automargin": False}
    yaxis = {"showgrid": True, "gridcolor": "#ebedf0", "zeroline": False, "automargin": False}
    if ytitle:
        yaxis["title"] = {"text": ytitle}
    # a long title on two lines: one line ran out of a half-width chart at 1024 px
    text, top = title, 40
    if len(title) > TITLE_LINE and " " in title[:TITLE_LINE]:
        cut = title.rindex(" ", 0, TITLE_LINE)
        text, top = title[:cut] + "<br>" + title[cut + 1:], 60
    base = {
        "template": {},
        "title": {"text": text, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 56, "r": 10, "t": top, "b": 30},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        "hovermode": "closest",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"family": "Source Sans Pro, sans-serif", "size": 12, "color": "#31333f"},
        "colorway": PALETTE,
        "xaxis": xaxis,
        "yaxis": yaxis,
    }
    return go.Figure({"data": traces, "layout": _merge(base, layout)}, _validate=False)


def _empty(title: str, message: str = "no data in this window") -> go.Figure:
    return _figure(
        [],
        title,
        annotations=[{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}],
        xaxis={"visible": False},
        yaxis={"visible": False},
    )


# ---- time axes and the period that is not over -------------------------------------------------

STEPS = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1)}
SO_FAR = {"hour": "this hour so far", "day": "today so far"}
PARTIAL_OPACITY = 0.4


def _naive(ts: object) -> pd.Timestamp:
    """A time as naive UTC (plotly.js reads no UTC offsets)."""
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    return t.tz_convert(None) if t.tzinfo is not None else t


def _time_axis(bucket: str, window: tuple[object, object] | None) -> dict:
    """An x axis of dates for buckets of ``bucket`` ("hour" or "day") with explicit ticks: one tick
    per 1, 2, 3, 6 or 12 hours, or per 1, 2 or 7 days, whichever gives at most about ten (plotly's
    own choice for one or two points is ticks like 23:59:59.9995). With ``window`` (start, end), the
    axis spans its buckets even when some hold no runs."""
    step = STEPS[bucket]
    axis: dict = {"type": "date"}
    if bucket == "hour":
        axis["tickformat"] = "%a %H:%M"  # one line: a second (the date) ran into the legend
    else:
        axis["tickformat"] = "%b %d"
    if window is None:
        if bucket == "day":
            axis["dtick"] = 86_400_000  # never ticks between days
        return axis
    first = _naive(window[0]).floor(step)
    last = (_naive(window[1]) - pd.Timedelta(microseconds=1)).floor(step)
    axis["range"] = [first - step / 2, last + step / 2]
    buckets = int((last - first) / step) + 1
    if bucket == "hour":
        every = next((h for h in (1, 2, 3, 6, 12) if buckets / h <= 10), 24)
        axis["dtick"] = every * 3_600_000
        axis["tick0"] = first.floor("D")
        axis["tickformat"] = "%a %H:%M" if every < 24 else "%b %d"
    elif buckets <= 70:
        every = next(d for d in (1, 2, 7, 14) if buckets / d <= 10)
        axis["dtick"] = every * 86_400_000
        axis["tick0"] = first
    return axis


def _is_partial(xs: object, partial_from: object | None) -> np.ndarray:
    """Which of the bucket starts ``xs`` lie in the period that is not over (from ``partial_from``)."""
    values = pd.to_datetime(pd.Series(xs))
    if partial_from is None or values.empty:
        return np.zeros(len(values), dtype=bool)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    return (values >= _naive(partial_from)).to_numpy()


def _partial_band(partial_from: object | None, bucket: str) -> dict:
    """Layout marking the bucket that is not over: a grey band over it and the words "today so far"
    (or "this hour so far") at its top, so a low last bar or point does not read as a drop."""
    if partial_from is None:
        return {}
    start, step = _naive(partial_from), STEPS[bucket]
    return {
        "shapes": [{"type": "rect", "xref": "x", "yref": "paper", "x0": start - step / 2, "x1": start + step / 2,
                    "y0": 0, "y1": 1, "fillcolor": "rgba(49,51,63,0.07)", "line": {"width": 0}, "layer": "below"}],
        # right-aligned to the band's right edge (the end of the axis): centred on the last bucket,
        # the words ran past the plot and were cut ("today so f")
        "annotations": [{"text": SO_FAR[bucket], "x": start + step / 2, "xanchor": "right", "xref": "x", "y": 1,
                         "yref": "paper", "yanchor": "bottom",
                         "showarrow": False, "font": {"size": 11, "color": "#6b6e76"}, "name": "partial"}],
    }


def _bar_opacity(xs: object, partial_from: object | None) -> list[float] | None:
    """Per-bar opacity: the bars of the period that is not over drawn faint."""
    partial = _is_partial(xs, partial_from)
    return [PARTIAL_OPACITY if p else 1.0 for p in partial] if partial.any() else None


def _per(bucket: str) -> str:
    return "per hour" if bucket == "hour" else "per day"


# ---- runs --------------------------------------------------------------------------------------


def health_grid(recent: pd.DataFrame) -> go.Figure:
    """Each pipeline's recent runs, oldest to newest, as squares coloured by status.

    ``recent``: pipeline, started_at, status, run_id (``store.dashboard_reads.recent_runs``).
    The x axis counts runs back from the newest (0), so hourly and daily pipelines line up.
    Drawn as one heatmap (z: the status's index in ``health_statuses(fig)``), not a marker per
    run: a few hundred SVG markers took the browser several times longer to draw. The legend
    entries are empty traces, one per status shown.
    """
    title = "Recent runs, newest on the right"
    if recent.empty:
        return _empty(title)
    f = recent.sort_values(["pipeline", "started_at"]).copy()
    f["pos"] = f.groupby("pipeline").cumcount() - f.groupby("pipeline")["started_at"].transform("size") + 1
    present = set(f["status"])
    statuses = [s for s in STATUS_COLORS if s in present] + sorted(present - set(STATUS_COLORS))
    names = sorted(f["pipeline"].unique())
    first = int(f["pos"].min())
    z = np.full((len(names), 1 - first), np.nan)
    text = np.full(z.shape, "", dtype=object)
    rows = f["pipeline"].map({p: i for i, p in enumerate(names)}).to_numpy()
    cols = (f["pos"] - first).to_numpy()
    z[rows, cols] = f["status"].map({s: i for i, s in enumerate(statuses)}).to_numpy(float)
    text[rows, cols] = (
        f["pipeline"].map(_t) + " " + f["status"].str.lower().map(_t) + "<br>" + f["started_at"].dt.strftime("%Y-%m-%d %H:%M")
        + " UTC<br>" + f["run_id"].map(_t)
    ).to_numpy(object)
    colors = [STATUS_COLORS.get(s, "#7f7f7f") for s in statuses]
    # one flat colour band per status index
    scale = [[edge / len(colors), c] for i, c in enumerate(colors) for edge in (i, i + 1)]
    labels = [_t(p) for p in names]
    traces = [
        {
            "type": "heatmap", "z": z, "x": np.arange(first, 1), "y": labels, "text": text,
            "hovertemplate": "%{text}<extra></extra>", "hoverongaps": False, "colorscale": scale,
            "zmin": -0.5, "zmax": len(colors) - 0.5, "showscale": False, "xgap": 3, "ygap": 3,
        }
    ] + [
        {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": _t(s.lower()),
         "marker": {"symbol": "square", "size": 12, "color": c}}
        for s, c in zip(statuses, colors, strict=True)
    ]
    return _figure(
        traces,
        title,
        height=max(220, 110 + 34 * len(names)),
        margin={"l": _label_margin(labels)},
        yaxis={"type": "category", "categoryorder": "category descending", "showgrid": False},
        xaxis={"dtick": 4, "showgrid": False},
    )


def health_statuses(fig: go.Figure) -> list[str]:
    """The statuses a ``health_grid`` figure's z values index, from its legend entries."""
    return [t.name.upper() for t in fig.data[1:]]


def runs_by_status(
    daily: pd.DataFrame, *, bucket: str = "day", window: tuple[object, object] | None = None, partial_from: object | None = None,
) -> go.Figure:
    """Runs per day (or per hour, ``bucket``) stacked by outcome (succeeded, failed, other), from
    the daily rollup (or ``insights.buckets.rollup_runs``). The bucket from ``partial_from`` on is
    not over: its bars are faint under a band saying so."""
    title = f"Runs {_per(bucket)}"
    if daily.empty:
        return _empty(title)
    g = daily.groupby("day", as_index=False)[["runs", "succeeded", "failed"]].sum()
    g["other"] = g["runs"] - g["succeeded"] - g["failed"]
    days = g["day"].to_numpy()
    opacity = _bar_opacity(days, partial_from)
    traces = [
        {"type": "bar", "x": days, "y": g[col].to_numpy(), "name": col,
         "marker": {"color": color} if opacity is None else {"color": color, "opacity": opacity}}
        for col, color in (("succeeded", STATUS_COLORS[SUCCEEDED]), ("failed", STATUS_COLORS[FAILED]), ("other", STATUS_COLORS[CANCELLED]))
    ]
    return _figure(traces, title, ytitle="runs", barmode="stack", xaxis=_time_axis(bucket, window), **_partial_band(partial_from, bucket))


def _markers(marks: pd.DataFrame | None, name: str, daily: pd.DataFrame, column: str, bucket: str = "day") -> list[dict]:
    """Anomalies as red crosses on the line of their pipeline and day (the detector's own
    observed value, whose unit may differ from the line's, is in the hover text)."""
    if marks is None or marks.empty:
        return []
    line = daily.set_index(["pipeline", "day"])[column]
    days = pd.to_datetime(marks["window_start"], utc=True).dt.tz_localize(None).dt.floor(STEPS[bucket])
    ys = []
    for pipe, day, observed in zip(marks["pipeline"], days, marks["observed"], strict=True):
        ys.append(line.get((pipe, day), observed))
    return [
        {
            "type": "scatter",
            "x": days.to_numpy(),
            "y": ys,
            "mode": "markers",
            "name": name,
            "marker": {"symbol": "x", "size": 12, "color": "#d62728", "line": {"width": 2}},
            "text": [f"{_t(s)} ({_t(v)}): observed {o:,.4g}, expected {e:,.4g}" for s, v, o, e in
                     zip(marks["subject"], marks["severity"], marks["observed"], marks["expected"], strict=True)],
            "hovertemplate": "%{text}<extra></extra>",
        }
    ]


class _Grid:
    """A chart's buckets as ``x0 + i * dx``: a line sends its y values on the grid (NaN where it
    has no point, joined over by ``connectgaps``) instead of one date string a point (28
    characters each, a week of hours on 20 lines was most of the Pipelines page's payload)."""

    MAX = 10_000  # buckets; a longer grid (never from the dashboard's windows) sends dates

    def __init__(self, days: pd.Series, bucket: str):
        t = pd.to_datetime(pd.Series(_dates(pd.Series(days)))) if len(days) else pd.Series(dtype="datetime64[ns]")
        self.step = STEPS[bucket]
        self.t0 = t.min() if len(t) else None
        self.n = int((t.max() - self.t0) / self.step) + 1 if len(t) else 0

    def line(self, days, values) -> dict:
        """``x0``/``dx`` and ``y`` (or ``x`` and ``y`` off the grid) for one trace."""
        values = np.asarray(values, dtype=float)
        t = pd.to_datetime(pd.Series(_dates(pd.Series(days))))
        pos = ((t - self.t0) / self.step).to_numpy(float) if self.t0 is not None else np.empty(0)
        if self.t0 is None or self.n > self.MAX or len(pos) != len(values) or not np.array_equal(pos, np.round(pos)):
            return {"x": t.to_numpy(), "y": values}
        y = np.full(self.n, np.nan)
        y[pos.astype(int)] = values
        return {"x0": self.t0.strftime("%Y-%m-%d %H:%M"), "dx": self.step.total_seconds() * 1000, "y": y, "connectgaps": True}

    def rows(self, days, values: np.ndarray) -> np.ndarray:
        """Rows of ``values`` (one per day of ``days``) placed on the grid, NaN rows between."""
        t = pd.to_datetime(pd.Series(_dates(pd.Series(days))))
        out = np.full((self.n, values.shape[1]), np.nan)
        out[((t - self.t0) / self.step).to_numpy(float).astype(int)] = values
        return out


FOCUS = 6  # pipelines drawn as named lines; the rest share one grey band and median line


def _focus(daily: pd.DataFrame, marks: pd.DataFrame | None, column: str, top: int) -> list[str]:
    """The pipelines to name: those with an anomaly marked first, then the highest ``column``
    (the window's peak), at most ``top``. A pipeline with no ``column`` value in the window (one
    that reports no records out) is never named: it would be a legend entry with no line."""
    peak = daily.groupby("pipeline", sort=True)[column].max().dropna().sort_values(ascending=False, kind="stable")
    marked = [] if marks is None or marks.empty else [p for p in marks["pipeline"].dropna().unique() if p in peak.index]
    chosen = list(dict.fromkeys(marked[:top] + list(peak.index)))[:top]
    return sorted(chosen)


def _others(daily: pd.DataFrame, names: set[str], column: str, unit: str, grid: _Grid) -> list[dict]:
    """The pipelines not in ``names`` as one grey band per bucket (their lowest to highest
    ``column``) with their median as a grey line; the median's hover gives how many of them ran
    in that bucket and the range. Three traces of one point a bucket, however many pipelines
    there are (one grey line each sent every pipeline's points to the browser). One legend entry
    (a second one stacks the legend on two rows) shows and hides all three."""
    rest = daily[~daily["pipeline"].isin(names)]
    values = rest[column].to_numpy(float) if not rest.empty else np.empty(0)
    if rest.empty or np.isnan(values).all():
        return []
    n = rest.loc[~np.isnan(values), "pipeline"].nunique()  # those with a value to draw
    g = (pd.DataFrame({"day": rest["day"].to_numpy(), "v": values}).dropna()
         .groupby("day", sort=True)["v"].agg(["min", "median", "max", "count"]))
    days = g.index.to_series()
    label = f"{n} other pipeline{'s' if n != 1 else ''}"
    group = {"legendgroup": "others", "mode": "lines"}
    median = grid.line(days, g["median"])
    return [
        {"type": "scatter", **group, **grid.line(days, g["max"]), "line": {"width": 0, "color": "#c7c7c7"},
         "showlegend": False, "hoverinfo": "skip", "name": f"{label}: highest"},
        {"type": "scatter", **group, **grid.line(days, g["min"]), "line": {"width": 0, "color": "#c7c7c7"},
         "fill": "tonexty", "fillcolor": "rgba(160,160,160,0.25)", "hoverinfo": "skip", "name": f"{label}: range and median"},
        {"type": "scatter", **group, **median, "line": {"color": "#a0a0a0", "width": 1},
         "name": f"{label}: median", "showlegend": False,
         "customdata": g[["count", "min", "max"]].to_numpy(float) if "x" in median else grid.rows(days, g[["count", "min", "max"]].to_numpy(float)),
         "hovertemplate": "%{customdata[0]:d} other pipeline(s): median %{y:,.4g} " + unit
         + ", lowest %{customdata[1]:,.4g}, highest %{customdata[2]:,.4g}<extra></extra>"},
    ]


def duration_trend(
    daily: pd.DataFrame, marks: pd.DataFrame | None = None, *, top: int = FOCUS, bucket: str = "day",
    window: tuple[object, object] | None = None, partial_from: object | None = None,
) -> go.Figure:
    """Daily p50 and p95 run duration per pipeline (rollup), with duration anomalies marked.

    At most ``top`` pipelines are named (those with anomalies first, then the slowest p95); the
    others' p95 are one grey band (lowest to highest per bucket) around their median, so the chart
    stays readable (and quick to send and draw) at many pipelines. Choosing pipelines in the sidebar names them. Points are per day (or per hour,
    ``bucket``); the bucket from ``partial_from`` on is not over, under a band saying so."""
    title = "Duration p95 (solid) and p50 (dotted), seconds" + (" per hour" if bucket == "hour" else "")
    if daily.empty:
        return _empty(title)
    focus = _focus(daily, marks, "duration_p95", top)
    grid = _Grid(daily["day"], bucket)
    traces = _others(daily, set(focus), "duration_p95", "s p95", grid)
    for i, name in enumerate(focus):
        part = daily[daily["pipeline"] == name]
        color = PALETTE[i % len(PALETTE)]
        # one legend entry per pipeline: p95 solid, p50 dotted, toggled together
        traces.append({"type": "scatter", **grid.line(part["day"], part["duration_p95"]), "mode": "lines",
                       "name": f"{_t(name)} p95", "legendgroup": str(i), "line": {"color": color}})
        traces.append({"type": "scatter", **grid.line(part["day"], part["duration_p50"]), "mode": "lines",
                       "name": f"{_t(name)} p50", "legendgroup": str(i), "showlegend": False, "line": {"color": color, "dash": "dot"}})
    traces += _markers(marks, "duration anomaly", daily, "duration_p95", bucket)
    return _figure(traces, title, ytitle="seconds", xaxis=_time_axis(bucket, window), **_partial_band(partial_from, bucket))


def throughput_trend(
    daily: pd.DataFrame, marks: pd.DataFrame | None = None, *, top: int = FOCUS, bucket: str = "day",
    window: tuple[object, object] | None = None, partial_from: object | None = None,
) -> go.Figure:
    """Records out per day (or per hour, ``bucket``) per pipeline, with throughput anomalies
    marked; at most ``top`` pipelines named (anomalies first, then the most records), the rest one
    grey band (lowest to highest per bucket) around their median. The bucket from ``partial_from`` on is not over: its counts are hollow markers
    "so far (partial)" apart from the lines (as the line's end they would read as a crash)."""
    title = f"Throughput (records out {_per(bucket)})"
    if daily.empty:
        return _empty(title)
    partial = _is_partial(daily["day"], partial_from)
    done, now = daily[~partial], daily[partial]
    focus = _focus(daily, marks, "records_out", top)
    grid = _Grid(done["day"], bucket)
    traces = _others(done, set(focus), "records_out", "records", grid)
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(focus)}
    # a marker on every point only where points stand apart: at 168 hours a line holds 168 markers
    # (1,000 SVG circles for six pipelines) that draw as a thicker line
    mode = "lines+markers" if done["day"].nunique() <= MARKERS_UP_TO else "lines"
    for name in focus:
        part = done[done["pipeline"] == name]
        traces.append({"type": "scatter", **grid.line(part["day"], part["records_out"]), "mode": mode,
                       "name": _t(name), "line": {"color": colors[name]}, "marker": {"size": 4}})
    if not now.empty:
        traces.append({
            "type": "scatter", "x": now["day"].to_numpy(), "y": now["records_out"].to_numpy(float), "mode": "markers",
            "name": "so far (partial)", "text": [_t(p) for p in now["pipeline"]],
            "marker": {"size": 8, "symbol": "circle-open", "color": [colors.get(p, "#a0a0a0") for p in now["pipeline"]]},
            "hovertemplate": "%{text}: %{y:,.0f} records so far (not over)<extra></extra>",
        })
    traces += _markers(marks, "throughput anomaly", daily, "records_out", bucket)
    return _figure(traces, title, ytitle="records", xaxis=_time_axis(bucket, window), **_partial_band(partial_from, bucket))


def run_timeline(steps: pd.DataFrame) -> go.Figure:
    """A run's stages as a timeline, top to bottom in the order they started: one bar per attempt
    (queue time in grey before it). A stage that took no time (or has no end) is a thin marker at
    its start, not a bar: a bar of a minimum width drew zero-length stages across the whole axis."""
    title = "Stages"
    if steps.empty:
        return _empty(title, "no stage records for this run")
    s = steps.copy()
    s["label"] = [f"{_t(st)} #{int(a)}" for st, a in zip(s["stage"], s["attempt"], strict=True)]
    s = s.sort_values("started_at", kind="stable", na_position="last")
    order = list(dict.fromkeys(s["label"]))
    traces = []
    queued = s[s["queued_at"].notna() & s["started_at"].notna() & (s["queued_at"] < s["started_at"])]
    if not queued.empty:
        traces.append(
            {
                "type": "bar",
                "y": queued["label"].to_numpy(str),
                "base": _dates(queued["queued_at"]),
                "x": ((queued["started_at"] - queued["queued_at"]).dt.total_seconds() * 1000).to_numpy(float),
                "orientation": "h",
                "name": "queued",
                "marker": {"color": "#d9d9d9"},
                "hovertemplate": "%{y}: queued %{x:,.0f} ms<extra></extra>",
            }
        )
    ran = s[s["started_at"].notna()].copy()
    end = ran["ended_at"].fillna(ran["started_at"])
    ran["ms"] = (end - ran["started_at"]).dt.total_seconds() * 1000
    # the shortest bar drawn: 0.5% of the run's span (a 20 ms stage in an hour's run stays visible)
    span = ((end.max() - ran["started_at"].min()).total_seconds() * 1000) if not ran.empty else 0.0
    instant = ran[ran["ms"] <= 0]
    ran = ran[ran["ms"] > 0]
    if not instant.empty:
        traces.append({
            "type": "scatter", "y": instant["label"].to_numpy(str), "x": _dates(instant["started_at"]), "mode": "markers",
            "name": "no duration", "text": [_t(str(v).lower()) for v in instant["status"]],
            "marker": {"symbol": "line-ns-open", "size": 16, "line": {"width": 3},
                       "color": [STATUS_COLORS.get(str(v), "#7f7f7f") for v in instant["status"]]},
            "hovertemplate": "%{y}: %{text}, no duration recorded<extra></extra>",
        })
    for status, part in ran.groupby("status", sort=True):
        # a status is data (a collector stores what the source said): shown as text, never as
        # plotly's HTML-like markup (a link) or as part of the hover template
        shown = _t(str(status).lower())
        traces.append(
            {
                "type": "bar",
                "y": part["label"].to_numpy(str),
                "base": _dates(part["started_at"]),
                "x": part["ms"].clip(lower=span * 0.005).to_numpy(float),
                "orientation": "h",
                "name": shown,
                "marker": {"color": STATUS_COLORS.get(str(status), "#7f7f7f")},
                "text": [shown] * len(part),
                "textposition": "none",
                "hovertemplate": "%{y}: %{text} %{x:,.0f} ms<extra></extra>",
            }
        )
    first = s["started_at"].dropna().min()
    if pd.notna(first):
        title = f"Stages, {first:%Y-%m-%d} UTC"
    return _figure(
        traces,
        title,
        height=max(220, 80 + 32 * len(order)),
        margin={"l": _label_margin(order)},
        barmode="overlay",
        # times only on the axis (a second line with the date would sit under the legend)
        xaxis={"type": "date", "tickformat": "%H:%M:%S"},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(order))},
    )


# ---- cost --------------------------------------------------------------------------------------


def _top_keys(frame: pd.DataFrame, top: int) -> list[str]:
    totals = frame.groupby("key")["cost"].sum().sort_values(ascending=False)
    return list(totals.index[:top])


def key_label(by: str) -> str:
    """The name of spend with no ``by`` value, on the charts and in their tables alike: "(untagged)"
    for a pipeline (no pipeline tag; as root causes say), else "(none)"."""
    return "(untagged)" if by == "pipeline" else "(none)"


def cost_stacked(
    by_day: pd.DataFrame, by: str, *, top: int = 10, currency: str = "USD", partial_from: date | None = None,
    window: tuple[object, object] | None = None,
) -> go.Figure:
    """Daily spend stacked by ``by``: the ``top`` largest keys, the rest as "other". Days from
    ``partial_from`` on (today, and days collected before they ended) are not over: faint bars
    under a band saying so."""
    title = f"Daily spend by {by.replace('_', ' ')} ({currency})"
    if by_day.empty:
        return _empty(title)
    keep = _top_keys(by_day, top)
    f = by_day.assign(key=by_day["key"].where(by_day["key"].isin(keep), OTHER))
    f["key"] = f["key"].replace("", key_label(by))
    g = f.groupby(["day", "key"], as_index=False)["cost"].sum()
    order = [k if k != "" else key_label(by) for k in keep]
    if OTHER in set(g["key"]):
        order.append(OTHER)
    traces = []
    for i, key in enumerate(order):
        part = g[g["key"] == key]
        opacity = _bar_opacity(part["day"], partial_from)
        color = PALETTE[i % len(PALETTE)]
        traces.append({"type": "bar", "x": part["day"].to_numpy(), "y": part["cost"].to_numpy(float), "name": _t(key),
                       "marker": {"color": color} if opacity is None else {"color": color, "opacity": opacity}})
    partial = None
    if partial_from is not None and (pd.to_datetime(g["day"]) >= pd.Timestamp(partial_from)).any():
        partial = pd.Timestamp(partial_from)
    band = _partial_band(partial, "day")
    if partial is not None and pd.to_datetime(g["day"]).max() > partial:  # more than one day not over
        band["annotations"][0]["text"] = "not over (partial)"
        band["shapes"][0]["x1"] = pd.to_datetime(g["day"]).max() + STEPS["day"] / 2
    return _figure(traces, title, height=380, ytitle=currency, barmode="stack", xaxis=_time_axis("day", window), **band)


def movers(frame: pd.DataFrame, by: str, *, currency: str = "USD") -> go.Figure:
    """Change in spend against the previous window, largest first."""
    title = f"Top movers by {by.replace('_', ' ')} ({currency} vs previous window)"
    if frame.empty:
        return _empty(title)
    f = frame.iloc[::-1]
    colors = ["#d62728" if c > 0 else "#2e9e5b" for c in f["change"]]
    names = [k if k != "" else key_label(by) for k in f[by]]
    # long names (usage types) are cut on the axis, whole in the hover: a margin for 60 characters
    # left no room for the bars in a narrow column, and the labels ran into each other
    labels = [_t(_short(k, MOVER_LABEL)) for k in names]
    bar = {"type": "bar", "x": f["change"].to_numpy(float), "y": labels, "orientation": "h", "marker": {"color": colors},
           "customdata": [_t(k) for k in names], "hovertemplate": "%{customdata}: %{x:+,.2f}<extra></extra>"}
    return _figure([bar], title, height=max(220, 60 + 26 * len(f)), margin={"l": _label_margin(labels)},
                   yaxis={"type": "category", "categoryorder": "array", "categoryarray": labels})


MOVER_LABEL = 24  # characters of a mover's name on the axis


def _short(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def forecast_vs_actual(
    actual: pd.DataFrame, points: pd.DataFrame, *, level: float | None = None, currency: str = "USD",
    partial_from: date | None = None,
) -> go.Figure:
    """Actual daily spend, the forecast mean, and its prediction band. Days from ``partial_from``
    on (today, and days collected before they ended) are not over: drawn apart, as hollow
    markers "so far (partial)", not as the end of the actual line (they would read as a drop)."""
    pct = f"{level * 100:.0f}% band" if level else "band"
    title = f"Forecast against actual ({currency}/day, {pct})"
    if actual.empty and points.empty:
        return _empty(title)
    traces = []
    days = points["day"].to_numpy()
    if not points.empty and points["upper"].notna().any():
        traces.append({"type": "scatter", "x": days, "y": points["upper"].to_numpy(float), "mode": "lines", "line": {"width": 0},
                       "showlegend": False, "hoverinfo": "skip"})
        traces.append({"type": "scatter", "x": days, "y": points["lower"].to_numpy(float), "mode": "lines", "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": "rgba(76,120,168,0.2)", "name": pct})
    if not points.empty:
        traces.append({"type": "scatter", "x": days, "y": points["mean"].to_numpy(float), "mode": "lines", "name": "forecast",
                       "line": {"color": "#4c78a8", "dash": "dash"}})
    partial = actual["day"] >= pd.Timestamp(partial_from) if partial_from is not None and not actual.empty else None
    done = actual if partial is None else actual[~partial]
    if not done.empty:
        traces.append({"type": "scatter", "x": done["day"].to_numpy(), "y": done["cost"].to_numpy(float), "mode": "lines+markers",
                       "name": "actual", "line": {"color": "#222"}, "marker": {"size": 4}})
    if partial is not None and partial.any():
        part = actual[partial]
        traces.append({"type": "scatter", "x": part["day"].to_numpy(), "y": part["cost"].to_numpy(float), "mode": "markers",
                       "name": "so far (partial)", "marker": {"size": 8, "color": "#222", "symbol": "circle-open"},
                       "hovertemplate": "%{x|%Y-%m-%d}: %{y:,.2f} so far (the day is not over)<extra></extra>"})
    return _figure(traces, title, ytitle=currency)


def cost_per_run(frame: pd.DataFrame, *, currency: str = "USD") -> go.Figure:
    """Estimated cost per run by pipeline."""
    title = f"Cost per run ({currency})"
    f = frame.dropna(subset=["cost_per_run"]) if not frame.empty else frame
    if f.empty:
        return _empty(title)
    bar = {"type": "bar", "x": [_t(p) for p in f["pipeline"]], "y": f["cost_per_run"].to_numpy(float), "marker": {"color": "#4c78a8"},
           "hovertemplate": "%{x}: %{y:,.4f}<extra></extra>"}
    return _figure([bar], title, ytitle=currency, **_category_x(bar["x"]))


def estimate_vs_bill(frame: pd.DataFrame, *, currency: str = "USD") -> go.Figure:
    """Per pipeline: the run-level estimate beside the tagged bill."""
    title = f"Estimate against bill by pipeline ({currency})"
    if frame.empty:
        return _empty(title)
    names = [_t(p) for p in frame["pipeline"]]
    traces = [
        {"type": "bar", "x": names, "y": frame["estimate"].to_numpy(float), "name": "run estimates", "marker": {"color": "#72b7b2"}},
        {"type": "bar", "x": names, "y": frame["billed"].to_numpy(float), "name": "bill (tagged)", "marker": {"color": "#4c78a8"}},
    ]
    return _figure(traces, title, ytitle=currency, barmode="group", **_category_x(names))


# ---- collectors --------------------------------------------------------------------------------


def collector_api_cost(passes: pd.DataFrame, *, window: tuple[object, object] | None = None) -> go.Figure:
    """The price of the API calls the collectors made, per day and source. With ``window``
    (start, end) the x axis spans the window's days, not only the days with passes."""
    title = "What watching costs: API calls priced (USD/day)"
    if passes.empty:
        return _empty(title)
    f = passes.assign(day=pd.to_datetime(passes["started_at"], utc=True).dt.floor("D"))
    g = f.groupby(["day", "source"], as_index=False)[["api_cost_usd", "api_calls"]].sum()
    # a day wide each (in ms on a date axis): plotly sizes bars by the gap between them, and a
    # single day of passes gave one bar across the whole plot
    width = 0.8 * 86_400_000
    traces = [
        {
            "type": "bar", "x": _dates(part["day"]), "y": part["api_cost_usd"].to_numpy(float), "name": _t(source),
            "width": width, "marker": {"color": PALETTE[i % len(PALETTE)]}, "customdata": part["api_calls"].to_numpy(),
            "hovertemplate": "%{x|%b %d}: $%{y:,.4f} (%{customdata} calls)<extra></extra>",
        }
        for i, (source, part) in enumerate(g.groupby("source", sort=True))
    ]
    return _figure(traces, title, ytitle="USD", barmode="stack", xaxis=_time_axis("day", window))
