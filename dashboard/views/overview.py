"""Overview: is anything broken, late or expensive right now?"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, data, state, ui

f = state.current()
s = data.settings()
cur = s.currency


def _delta(k: dict, key: str, fmt: str) -> str | None:
    a, b = k["current"].get(key), k["previous"].get(key)
    return None if a is None or b is None else fmt.format(a - b)


def _value(k: dict, key: str, fmt: str, none: str = "n/a") -> str:
    v = k["current"].get(key)
    return none if v is None else fmt.format(v)


st.title("Overview")
st.caption(f"Last {f.range} against the {f.range} before")

# The tiles are drawn into this slot after the health grid: its chart reaches the browser first
# and plotly's script (0.8 s to load in a new browser) loads while the tiles' reads run.
tiles = st.container()

st.subheader("Pipeline health")
grid = data.health_grid(f.end - timedelta(days=7) if f.range == "24h" else f.start, f.pipelines)
left, right = st.columns([3, 2])
with left:
    if grid.empty:
        ui.empty("No runs to show", "pipepulse collect")
    else:
        st.plotly_chart(charts.health_grid(grid), key="health_grid", config={"displaylogo": False})
with tiles:
    k = data.kpis(f.start, f.end, f.prev_start, f.prev_end, f.pipelines)
    now_k, prev_k = k["current"], k["previous"]

    c = st.columns(4)
    c[0].metric("Success rate", _value(k, "success_rate", "{:.1f}%"), _delta(k, "success_rate", "{:+.1f} pts"), border=True)
    c[1].metric("p95 duration", _value(k, "p95", "{:,.0f} s"), _delta(k, "p95", "{:+,.0f} s"), delta_color="inverse", border=True)
    c[2].metric(
        "Throughput (records/h)", _value(k, "throughput_per_hour", "{:,.0f}"), _delta(k, "throughput_per_hour", "{:+,.0f}"), border=True,
        help="Records out per hour over the window",
    )
    c[3].metric("Failed runs", _value(k, "failed", "{:,.0f}"), _delta(k, "failed", "{:+,.0f}"), delta_color="inverse", border=True)

    spend = data.spend_month_to_date(f.now.date(), "billed", f.accounts, f.pipelines)
    snap, _points = data.forecast("total")
    open_anoms = data.anomalies(statuses=("open",), pipelines=f.pipelines)
    c = st.columns(4)
    if spend["has_data"]:
        c[0].metric(
            "Spend month to date",
            f"{spend['mtd']:,.0f} {cur}",
            f"{spend['mtd'] - spend['previous']:+,.0f} vs last month" if spend["previous"] else None,
            delta_color="inverse",
            border=True,
        )
    else:
        c[0].metric("Spend month to date", "no cost data", border=True)
    budget = s.budget_monthly if s.budget_monthly is not None else (snap or {}).get("budget")
    if snap is not None and snap.get("month_end_mean") is not None:
        mean = snap["month_end_mean"]
        band = ""
        if snap.get("month_end_lower") is not None and snap.get("month_end_upper") is not None:
            band = f" ({snap['month_end_lower']:,.0f}-{snap['month_end_upper']:,.0f})"
        over = f"{mean - budget:+,.0f} vs budget {budget:,.0f}" if budget else None
        c[1].metric("Forecast month end", f"{mean:,.0f} {cur}", over, delta_color="inverse", border=True, help=f"Forecast snapshot {snap['created_at']:%Y-%m-%d %H:%M} UTC{band}")
    else:
        c[1].metric("Forecast month end", "no forecast", border=True, help="Run `pipepulse forecast` after collecting costs")
    c[2].metric("Open anomalies", f"{len(open_anoms):,}", border=True)
    c[3].metric("Runs", _value(k, "runs", "{:,.0f}"), _delta(k, "runs", "{:+,.0f}"), delta_color="off", border=True)

    if now_k["runs"] == 0 and prev_k["runs"] == 0:
        ui.empty("No runs in this window", "pipepulse collect")
    if not spend["has_data"]:
        ui.empty("No costs yet", "pipepulse collect", "pipepulse costs import PATH")

with right:
    fresh = data.freshness(f.now, f.pipelines)
    if fresh.empty:
        ui.empty("No pipelines yet", "pipepulse collect")
    else:
        ui.table(
            fresh[["pipeline", "state", "message", "last_run_status", "last_success_at"]],
            key="freshness",
            filename="freshness.csv",
            static=True,
            column_config={
                "last_success_at": st.column_config.DatetimeColumn("last success", format="YYYY-MM-DD HH:mm"),
                "last_run_status": "last run",
                "message": st.column_config.TextColumn("freshness", width="medium"),
            },
        )

st.subheader("Recent failures")
fails = data.failures(f.start, f.end, f.pipelines)
if fails.empty:
    st.success("No failed runs in this window.")
else:
    view = fails[["started_at", "pipeline", "status", "error_type", "error_message", "attempt", "run_id"]].copy()
    view.insert(0, "open", [ui.run_link(r) for r in view["run_id"]])
    ui.table(
        view,
        key="failures",
        filename="failures.csv",
        static=True,
        column_config={
            "open": st.column_config.LinkColumn("run", display_text="details", width="small"),
            "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
            "error_message": st.column_config.TextColumn("error", width="large"),
        },
    )
