"""Collectors: each source's last pass, lag, errors, rows, and the API calls made with their price."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, data, state, ui

f = state.current()
st.title("Collectors")
passes = data.collector_runs(f.start)
if passes.empty:
    ui.empty("No collector passes in this window", "pipepulse collect")
    st.stop()

table = data.collector_summary(f.start, f.now)
ui.tiles([
    ui.Tile("Sources", f"{len(table):,}"),
    ui.Tile("API calls", f"{int(table['api_calls'].sum()):,}"),
    ui.Tile("API cost", f"{table['api_cost_usd'].sum():,.4f} USD", help=f"Collector passes in the last {f.range}"),
], key="collector_tiles", columns=3)
# seven columns, so the table fits a 1024 px window; the CSV also has the last pass's start, the
# pass counts as numbers, the rows written and the API calls
runs = [f"{n:,}" + (f", {k:,} failed" if k else "") for n, k in zip(table["passes"], table["failed_passes"], strict=True)]
view = table.assign(runs=runs)[["source", "last_status", "data_through", "lag_minutes", "runs", "last_error", "api_cost_usd",
                                "last_pass", "passes", "failed_passes", "rows", "api_calls"]]
ui.table(view, key="collector_summary", filename="collectors.csv", static=True, height=640,
         hide=("last_pass", "passes", "failed_passes", "rows", "api_calls"), column_config={
    "last_status": "last pass",
    "data_through": st.column_config.DatetimeColumn(
        "data through", format="YYYY-MM-DD HH:mm",
        help="The newest time the source's data was read up to (a daily source such as Cost Explorer: the time of its "
             "last pass, which read today's cost so far)"),
    "lag_minutes": st.column_config.NumberColumn(
        "lag (min)", format="%.0f", help="Minutes from 'data through' to now: how stale this source's data is, never negative"),
    "runs": st.column_config.TextColumn("passes", help="Passes in this window, and how many of them failed"),
    "api_cost_usd": st.column_config.NumberColumn("API cost USD", format="%.4f"),
    "last_error": st.column_config.TextColumn("last error"),
})
st.plotly_chart(charts.collector_api_cost(passes, window=(f.start_day, f.end_day + timedelta(days=1))),
                key="collector_cost", config=charts.CONFIG)
st.subheader("Passes")
PASS_ROWS = 50
st.caption(f"Newest {min(PASS_ROWS, len(passes)):,} of {len(passes):,} passes in this window; the CSV has all of them.")
ui.table(passes, key="passes", filename="collector_passes.csv", height=400, static=True, rows=PASS_ROWS,
         hide=("collector_run_id", "details", "ended_at", "window_start", "slot"), column_config={"api_cost_usd": st.column_config.NumberColumn("API cost USD", format="%.4f")})
