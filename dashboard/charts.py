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
    if longest * 7 * max(len(labels), 1) <= 520:  # they fit side by side
        return {}
    return {
        "xaxis": {"tickangle": -35},
        "margin": {"b": 24 + int(7 * longest * 0.58)},
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
    base = {
        "template": {},
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 56, "r": 10, "t": 40, "b": 30},
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


def runs_by_status(daily: pd.DataFrame) -> go.Figure:
    """Runs per day stacked by outcome (succeeded, failed, other), from the daily rollup."""
    title = "Runs per day"
    if daily.empty:
        return _empty(title)
    g = daily.groupby("day", as_index=False)[["runs", "succeeded", "failed"]].sum()
    g["other"] = g["runs"] - g["succeeded"] - g["failed"]
    days = g["day"].to_numpy()
    traces = [
        {"type": "bar", "x": days, "y": g[col].to_numpy(), "name": col, "marker": {"color": color}}
        for col, color in (("succeeded", STATUS_COLORS[SUCCEEDED]), ("failed", STATUS_COLORS[FAILED]), ("other", STATUS_COLORS[CANCELLED]))
    ]
    return _figure(traces, title, ytitle="runs", barmode="stack")


def _markers(marks: pd.DataFrame | None, name: str, daily: pd.DataFrame, column: str) -> list[dict]:
    """Anomalies as red crosses on the line of their pipeline and day (the detector's own
    observed value, whose unit may differ from the line's, is in the hover text)."""
    if marks is None or marks.empty:
        return []
    line = daily.set_index(["pipeline", "day"])[column]
    days = pd.to_datetime(marks["window_start"], utc=True).dt.tz_localize(None).dt.floor("D")
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


FOCUS = 6  # pipelines drawn as named lines; the rest share one grey trace


def _focus(daily: pd.DataFrame, marks: pd.DataFrame | None, column: str, top: int) -> list[str]:
    """The pipelines to name: those with an anomaly marked first, then the highest ``column``
    (the window's peak), at most ``top``."""
    peak = daily.groupby("pipeline", sort=True)[column].max().sort_values(ascending=False, kind="stable")
    marked = [] if marks is None or marks.empty else [p for p in marks["pipeline"].dropna().unique() if p in peak.index]
    chosen = list(dict.fromkeys(marked[:top] + list(peak.index)))[:top]
    return sorted(chosen)


def _others(daily: pd.DataFrame, names: set[str], column: str, unit: str) -> list[dict]:
    """The pipelines not in ``names`` as one grey line trace (segments split by gaps); the hover
    names the pipeline. One trace instead of one each: plotly's drawing time grows with traces."""
    rest = daily[~daily["pipeline"].isin(names)]
    if rest.empty:
        return []
    rest = rest.sort_values(["pipeline", "day"], kind="stable")
    pipes = rest["pipeline"].to_numpy(object)
    # a None after each pipeline's last point: the segments do not join
    ends = np.flatnonzero(np.append(pipes[1:] != pipes[:-1], True)) + 1
    xs = np.insert(pd.to_datetime(rest["day"]).dt.strftime("%Y-%m-%d").to_numpy(object), ends, None).tolist()
    ys = np.insert(rest[column].to_numpy(float).astype(object), ends, None).tolist()
    text = np.insert(np.array([_t(p) for p in pipes], dtype=object), ends, "").tolist()
    n = rest["pipeline"].nunique()
    return [{
        "type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": f"{n} other pipeline{'s' if n != 1 else ''}",
        "line": {"color": "#c7c7c7", "width": 1}, "text": text, "connectgaps": False,
        "hovertemplate": "%{text}: %{y:,.4g} " + unit + "<extra></extra>",
    }]


def duration_trend(daily: pd.DataFrame, marks: pd.DataFrame | None = None, *, top: int = FOCUS) -> go.Figure:
    """Daily p50 and p95 run duration per pipeline (rollup), with duration anomalies marked.

    At most ``top`` pipelines are named (those with anomalies first, then the slowest p95); the
    others' p95 share one grey line, so the chart stays readable (and quick to draw) at many
    pipelines. Choosing pipelines in the sidebar names them."""
    title = "Duration p95 (solid) and p50 (dotted), seconds"
    if daily.empty:
        return _empty(title)
    focus = _focus(daily, marks, "duration_p95", top)
    traces = _others(daily, set(focus), "duration_p95", "s p95")
    for i, name in enumerate(focus):
        part = daily[daily["pipeline"] == name]
        color = PALETTE[i % len(PALETTE)]
        days = part["day"].to_numpy()
        # one legend entry per pipeline: p95 solid, p50 dotted, toggled together
        traces.append({"type": "scatter", "x": days, "y": part["duration_p95"].to_numpy(float), "mode": "lines",
                       "name": f"{_t(name)} p95", "legendgroup": str(i), "line": {"color": color}})
        traces.append({"type": "scatter", "x": days, "y": part["duration_p50"].to_numpy(float), "mode": "lines",
                       "name": f"{_t(name)} p50", "legendgroup": str(i), "showlegend": False, "line": {"color": color, "dash": "dot"}})
    traces += _markers(marks, "duration anomaly", daily, "duration_p95")
    return _figure(traces, title, ytitle="seconds")


def throughput_trend(daily: pd.DataFrame, marks: pd.DataFrame | None = None, *, top: int = FOCUS) -> go.Figure:
    """Records out per day per pipeline (rollup), with throughput anomalies marked; at most
    ``top`` pipelines named (anomalies first, then the most records), the rest one grey line."""
    title = "Throughput (records out per day)"
    if daily.empty:
        return _empty(title)
    focus = _focus(daily, marks, "records_out", top)
    traces = _others(daily, set(focus), "records_out", "records")
    for i, name in enumerate(focus):
        part = daily[daily["pipeline"] == name]
        traces.append({"type": "scatter", "x": part["day"].to_numpy(), "y": part["records_out"].to_numpy(), "mode": "lines+markers",
                       "name": _t(name), "line": {"color": PALETTE[i % len(PALETTE)]}, "marker": {"size": 4}})
    traces += _markers(marks, "throughput anomaly", daily, "records_out")
    return _figure(traces, title, ytitle="records")


def run_timeline(steps: pd.DataFrame) -> go.Figure:
    """A run's stages as a timeline: one bar per attempt (queue time in grey before it)."""
    title = "Stages"
    if steps.empty:
        return _empty(title, "no stage records for this run")
    s = steps.copy()
    s["label"] = [f"{_t(st)} #{int(a)}" for st, a in zip(s["stage"], s["attempt"], strict=True)]
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
    for status, part in ran.groupby("status", sort=True):
        # a status is data (a collector stores what the source said): shown as text, never as
        # plotly's HTML-like markup (a link) or as part of the hover template
        shown = _t(str(status).lower())
        traces.append(
            {
                "type": "bar",
                "y": part["label"].to_numpy(str),
                "base": _dates(part["started_at"]),
                "x": part["ms"].clip(lower=500).to_numpy(float),
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


def cost_stacked(by_day: pd.DataFrame, by: str, *, top: int = 10, currency: str = "USD") -> go.Figure:
    """Daily spend stacked by ``by``: the ``top`` largest keys, the rest as "other"."""
    title = f"Daily spend by {by.replace('_', ' ')} ({currency})"
    if by_day.empty:
        return _empty(title)
    keep = _top_keys(by_day, top)
    f = by_day.assign(key=by_day["key"].where(by_day["key"].isin(keep), OTHER))
    f["key"] = f["key"].replace("", "(untagged)" if by == "pipeline" else "(none)")
    g = f.groupby(["day", "key"], as_index=False)["cost"].sum()
    order = [k if k != "" else ("(untagged)" if by == "pipeline" else "(none)") for k in keep]
    if OTHER in set(g["key"]):
        order.append(OTHER)
    traces = []
    for i, key in enumerate(order):
        part = g[g["key"] == key]
        traces.append({"type": "bar", "x": part["day"].to_numpy(), "y": part["cost"].to_numpy(float), "name": _t(key),
                       "marker": {"color": PALETTE[i % len(PALETTE)]}})
    return _figure(traces, title, height=380, ytitle=currency, barmode="stack")


def movers(frame: pd.DataFrame, by: str, *, currency: str = "USD") -> go.Figure:
    """Change in spend against the previous window, largest first."""
    title = f"Top movers by {by.replace('_', ' ')} ({currency}, vs previous window)"
    if frame.empty:
        return _empty(title)
    f = frame.iloc[::-1]
    colors = ["#d62728" if c > 0 else "#2e9e5b" for c in f["change"]]
    labels = [_t(k) if k != "" else "(none)" for k in f[by]]
    bar = {"type": "bar", "x": f["change"].to_numpy(float), "y": labels, "orientation": "h", "marker": {"color": colors},
           "hovertemplate": "%{y}: %{x:+,.2f}<extra></extra>"}
    return _figure([bar], title, height=max(220, 60 + 26 * len(f)), margin={"l": _label_margin(labels)})


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


def collector_api_cost(passes: pd.DataFrame) -> go.Figure:
    """The price of the API calls the collectors made, per day and source."""
    title = "What watching costs: API calls priced (USD/day)"
    if passes.empty:
        return _empty(title)
    f = passes.assign(day=pd.to_datetime(passes["started_at"], utc=True).dt.floor("D"))
    g = f.groupby(["day", "source"], as_index=False)[["api_cost_usd", "api_calls"]].sum()
    traces = [
        {
            "type": "bar", "x": _dates(part["day"]), "y": part["api_cost_usd"].to_numpy(float), "name": _t(source),
            "marker": {"color": PALETTE[i % len(PALETTE)]}, "customdata": part["api_calls"].to_numpy(),
            "hovertemplate": "%{x}: $%{y:,.4f} (%{customdata} calls)<extra></extra>",
        }
        for i, (source, part) in enumerate(g.groupby("source", sort=True))
    ]
    return _figure(traces, title, ytitle="USD", barmode="stack")
