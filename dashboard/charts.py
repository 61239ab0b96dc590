"""Chart builders: pure functions from small DataFrames to plotly figures (no Streamlit, no I/O).

Text that comes from data (pipeline, service and stage names, errors) is escaped before plotly
sees it: plotly renders a few HTML tags in labels, and a name like ``<b>x</b>`` must show as
typed. Lines use SVG (``go.Scatter``), never WebGL, so a browser test can see what was drawn.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "STATUS_COLORS",
    "collector_api_cost",
    "cost_per_run",
    "cost_stacked",
    "duration_trend",
    "estimate_vs_bill",
    "forecast_vs_actual",
    "health_grid",
    "movers",
    "run_timeline",
    "runs_by_status",
    "throughput_trend",
]

STATUS_COLORS = {
    "SUCCEEDED": "#2e9e5b",
    "FAILED": "#d62728",
    "TIMED_OUT": "#8c1c13",
    "CANCELLED": "#9e9e9e",
    "RUNNING": "#1f77b4",
    "QUEUED": "#9ecae1",
    "AWAITING_RETRY": "#ff9f1c",
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


def _layout(fig: go.Figure, title: str, *, height: int = HEIGHT, ytitle: str | None = None) -> go.Figure:
    # template "none" plus explicit colours: a named template such as "plotly_white" is deep-copied
    # and validated into every figure, ~60 ms a chart on every rerun
    fig.update_layout(
        template="none",
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 56, "r": 10, "t": 40, "b": 30},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        hovermode="closest",
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": "Source Sans Pro, sans-serif", "size": 12, "color": "#31333f"},
        colorway=PALETTE,
    )
    fig.update_xaxes(showgrid=True, gridcolor="#ebedf0", zeroline=False, linecolor="#d0d3d9", automargin=True)
    fig.update_yaxes(showgrid=True, gridcolor="#ebedf0", zeroline=False, automargin=True)
    if ytitle:
        fig.update_yaxes(title_text=ytitle)
    return fig


def _empty(title: str, message: str = "no data in this window") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


# ---- runs --------------------------------------------------------------------------------------


def health_grid(recent: pd.DataFrame) -> go.Figure:
    """Each pipeline's recent runs, oldest to newest, as squares coloured by status.

    ``recent``: pipeline, started_at, status, run_id (``store.dashboard_reads.recent_runs``).
    The x axis counts runs back from the newest (0), so hourly and daily pipelines line up.
    """
    title = "Recent runs, newest on the right"
    if recent.empty:
        return _empty(title)
    f = recent.sort_values(["pipeline", "started_at"]).copy()
    f["pos"] = f.groupby("pipeline").cumcount() - f.groupby("pipeline")["started_at"].transform("size") + 1
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        part = f[f["status"] == status]
        if part.empty:
            continue
        # numpy arrays, not lists: plotly validates a list element by element (slow on every rerun)
        customdata = np.column_stack(
            [part["run_id"].map(_t).to_numpy(str), part["started_at"].dt.strftime("%Y-%m-%d %H:%M").to_numpy(str)]
        )
        fig.add_trace(
            go.Scatter(
                x=part["pos"].to_numpy(),
                y=part["pipeline"].map(_t).to_numpy(str),
                mode="markers",
                name=status.lower(),
                marker={"symbol": "square", "size": 14, "color": color},
                customdata=customdata,
                hovertemplate="%{y} " + status.lower() + "<br>%{customdata[1]} UTC<br>%{customdata[0]}<extra></extra>",
            )
        )
    pipelines = f["pipeline"].nunique()
    fig = _layout(fig, title, height=max(220, 110 + 34 * pipelines))
    fig.update_yaxes(type="category", categoryorder="category descending")
    fig.update_xaxes(zeroline=False, dtick=4)
    return fig


def runs_by_status(daily: pd.DataFrame) -> go.Figure:
    """Runs per day stacked by outcome (succeeded, failed, other), from the daily rollup."""
    title = "Runs per day"
    if daily.empty:
        return _empty(title)
    g = daily.groupby("day", as_index=False)[["runs", "succeeded", "failed"]].sum()
    g["other"] = g["runs"] - g["succeeded"] - g["failed"]
    fig = go.Figure()
    for col, color in (("succeeded", STATUS_COLORS["SUCCEEDED"]), ("failed", STATUS_COLORS["FAILED"]), ("other", STATUS_COLORS["CANCELLED"])):
        fig.add_trace(go.Bar(x=g["day"], y=g[col], name=col, marker_color=color))
    fig.update_layout(barmode="stack")
    return _layout(fig, title, ytitle="runs")


def _markers(fig: go.Figure, marks: pd.DataFrame | None, name: str, daily: pd.DataFrame, column: str) -> None:
    """Anomalies as red crosses on the line of their pipeline and day (the detector's own
    observed value, whose unit may differ from the line's, is in the hover text)."""
    if marks is None or marks.empty:
        return
    line = daily.set_index(["pipeline", "day"])[column]
    days = pd.to_datetime(marks["window_start"], utc=True).dt.tz_localize(None).dt.floor("D")
    ys = []
    for pipe, day, observed in zip(marks["pipeline"], days, marks["observed"], strict=True):
        ys.append(line.get((pipe, day), observed))
    fig.add_trace(
        go.Scatter(
            x=days,
            y=ys,
            mode="markers",
            name=name,
            marker={"symbol": "x", "size": 12, "color": "#d62728", "line": {"width": 2}},
            text=[f"{_t(s)} ({_t(v)}): observed {o:,.4g}, expected {e:,.4g}" for s, v, o, e in
                  zip(marks["subject"], marks["severity"], marks["observed"], marks["expected"], strict=True)],
            hovertemplate="%{text}<extra></extra>",
        )
    )


def duration_trend(daily: pd.DataFrame, marks: pd.DataFrame | None = None) -> go.Figure:
    """Daily p50 and p95 run duration per pipeline (rollup), with duration anomalies marked."""
    title = "Duration p95 (solid) and p50 (dotted), seconds"
    if daily.empty:
        return _empty(title)
    fig = go.Figure()
    for i, (name, part) in enumerate(daily.groupby("pipeline", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        # one legend entry per pipeline: p95 solid, p50 dotted, toggled together
        fig.add_trace(
            go.Scatter(x=part["day"], y=part["duration_p95"], mode="lines", name=f"{_t(name)} p95", legendgroup=str(i),
                       line={"color": color})
        )
        fig.add_trace(
            go.Scatter(x=part["day"], y=part["duration_p50"], mode="lines", name=f"{_t(name)} p50", legendgroup=str(i),
                       showlegend=False, line={"color": color, "dash": "dot"})
        )
    _markers(fig, marks, "duration anomaly", daily, "duration_p95")
    return _layout(fig, title, ytitle="seconds")


def throughput_trend(daily: pd.DataFrame, marks: pd.DataFrame | None = None) -> go.Figure:
    """Records out per day per pipeline (rollup), with throughput anomalies marked."""
    title = "Throughput (records out per day)"
    if daily.empty:
        return _empty(title)
    fig = go.Figure()
    for i, (name, part) in enumerate(daily.groupby("pipeline", sort=True)):
        fig.add_trace(
            go.Scatter(x=part["day"], y=part["records_out"], mode="lines+markers", name=_t(name), line={"color": PALETTE[i % len(PALETTE)]}, marker={"size": 4})
        )
    _markers(fig, marks, "throughput anomaly", daily, "records_out")
    return _layout(fig, title, ytitle="records")


def run_timeline(steps: pd.DataFrame) -> go.Figure:
    """A run's stages as a timeline: one bar per attempt (queue time in grey before it)."""
    title = "Stages"
    if steps.empty:
        return _empty(title, "no stage records for this run")
    s = steps.copy()
    s["label"] = [f"{_t(st)} #{int(a)}" for st, a in zip(s["stage"], s["attempt"], strict=True)]
    order = list(dict.fromkeys(s["label"]))
    fig = go.Figure()
    queued = s[s["queued_at"].notna() & s["started_at"].notna() & (s["queued_at"] < s["started_at"])]
    if not queued.empty:
        fig.add_trace(
            go.Bar(
                y=queued["label"],
                base=queued["queued_at"],
                x=(queued["started_at"] - queued["queued_at"]).dt.total_seconds() * 1000,
                orientation="h",
                name="queued",
                marker_color="#d9d9d9",
                hovertemplate="%{y}: queued %{x:,.0f} ms<extra></extra>",
            )
        )
    ran = s[s["started_at"].notna()].copy()
    end = ran["ended_at"].fillna(ran["started_at"])
    ran["ms"] = (end - ran["started_at"]).dt.total_seconds() * 1000
    for status, part in ran.groupby("status", sort=True):
        fig.add_trace(
            go.Bar(
                y=part["label"],
                base=part["started_at"],
                x=part["ms"].clip(lower=500),
                orientation="h",
                name=str(status).lower(),
                marker_color=STATUS_COLORS.get(str(status), "#7f7f7f"),
                hovertemplate="%{y}: " + str(status).lower() + " %{x:,.0f} ms<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    # times only on the axis (a second line with the date would sit under the legend)
    fig.update_xaxes(type="date", tickformat="%H:%M:%S")
    first = s["started_at"].dropna().min()
    if pd.notna(first):
        title = f"Stages, {first:%Y-%m-%d} UTC"
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(order)))
    return _layout(fig, title, height=max(220, 80 + 32 * len(order)))


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
    fig = go.Figure()
    for i, key in enumerate(order):
        part = g[g["key"] == key]
        fig.add_trace(go.Bar(x=part["day"], y=part["cost"], name=_t(key), marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(barmode="stack")
    return _layout(fig, title, height=380, ytitle=currency)


def movers(frame: pd.DataFrame, by: str, *, currency: str = "USD") -> go.Figure:
    """Change in spend against the previous window, largest first."""
    title = f"Top movers by {by.replace('_', ' ')} ({currency}, vs previous window)"
    if frame.empty:
        return _empty(title)
    f = frame.iloc[::-1]
    colors = ["#d62728" if c > 0 else "#2e9e5b" for c in f["change"]]
    labels = [_t(k) if k != "" else "(none)" for k in f[by]]
    fig = go.Figure(go.Bar(x=f["change"], y=labels, orientation="h", marker_color=colors, hovertemplate="%{y}: %{x:+,.2f}<extra></extra>"))
    return _layout(fig, title, height=max(220, 60 + 26 * len(f)))


def forecast_vs_actual(
    actual: pd.DataFrame, points: pd.DataFrame, *, level: float | None = None, currency: str = "USD"
) -> go.Figure:
    """Actual daily spend, the forecast mean, and its prediction band."""
    pct = f"{level * 100:.0f}% band" if level else "band"
    title = f"Forecast against actual ({currency}/day, {pct})"
    if actual.empty and points.empty:
        return _empty(title)
    fig = go.Figure()
    if not points.empty and points["upper"].notna().any():
        fig.add_trace(go.Scatter(x=points["day"], y=points["upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
        fig.add_trace(
            go.Scatter(
                x=points["day"], y=points["lower"], mode="lines", line={"width": 0}, fill="tonexty",
                fillcolor="rgba(76,120,168,0.2)", name=pct,
            )
        )
    if not points.empty:
        fig.add_trace(go.Scatter(x=points["day"], y=points["mean"], mode="lines", name="forecast", line={"color": "#4c78a8", "dash": "dash"}))
    if not actual.empty:
        fig.add_trace(go.Scatter(x=actual["day"], y=actual["cost"], mode="lines+markers", name="actual", line={"color": "#222"}, marker={"size": 4}))
    return _layout(fig, title, ytitle=currency)


def cost_per_run(frame: pd.DataFrame, *, currency: str = "USD") -> go.Figure:
    """Estimated cost per run by pipeline."""
    title = f"Cost per run ({currency})"
    f = frame.dropna(subset=["cost_per_run"]) if not frame.empty else frame
    if f.empty:
        return _empty(title)
    fig = go.Figure(go.Bar(x=[_t(p) for p in f["pipeline"]], y=f["cost_per_run"], marker_color="#4c78a8", hovertemplate="%{x}: %{y:,.4f}<extra></extra>"))
    return _layout(fig, title, ytitle=currency)


def estimate_vs_bill(frame: pd.DataFrame, *, currency: str = "USD") -> go.Figure:
    """Per pipeline: the run-level estimate beside the tagged bill."""
    title = f"Estimate against bill by pipeline ({currency})"
    if frame.empty:
        return _empty(title)
    names = [_t(p) for p in frame["pipeline"]]
    fig = go.Figure(
        [
            go.Bar(x=names, y=frame["estimate"], name="run estimates", marker_color="#72b7b2"),
            go.Bar(x=names, y=frame["billed"], name="bill (tagged)", marker_color="#4c78a8"),
        ]
    )
    fig.update_layout(barmode="group")
    return _layout(fig, title, ytitle=currency)


# ---- collectors --------------------------------------------------------------------------------


def collector_api_cost(passes: pd.DataFrame) -> go.Figure:
    """The price of the API calls the collectors made, per day and source."""
    title = "What watching costs: API calls priced (USD/day)"
    if passes.empty:
        return _empty(title)
    f = passes.assign(day=pd.to_datetime(passes["started_at"], utc=True).dt.floor("D"))
    g = f.groupby(["day", "source"], as_index=False)[["api_cost_usd", "api_calls"]].sum()
    fig = go.Figure()
    for i, (source, part) in enumerate(g.groupby("source", sort=True)):
        fig.add_trace(
            go.Bar(
                x=part["day"], y=part["api_cost_usd"], name=_t(source), marker_color=PALETTE[i % len(PALETTE)],
                customdata=part["api_calls"], hovertemplate="%{x}: $%{y:,.4f} (%{customdata} calls)<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, title, ytitle="USD")

