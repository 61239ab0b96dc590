"""Collectors: each source's last pass, lag, errors, rows, and the API calls made with their price."""

from __future__ import annotations

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
ui.table(table, key="collector_summary", filename="collectors.csv", static=True, column_config={
    "last_pass": st.column_config.DatetimeColumn("last pass", format="YYYY-MM-DD HH:mm"),
    "data_through": st.column_config.DatetimeColumn(
        "data through", format="YYYY-MM-DD HH:mm",
        help="The newest time the source's data was read up to (a daily source such as Cost Explorer: the time of its "
             "last pass, which read today's cost so far)"),
    "lag_minutes": st.column_config.NumberColumn(
        "lag (min)", format="%.0f", help="Minutes from 'data through' to now: how stale this source's data is, never negative"),
    "api_cost_usd": st.column_config.NumberColumn("API cost USD", format="%.4f"),
    "last_error": st.column_config.TextColumn("last error", width="large"),
})
st.plotly_chart(charts.collector_api_cost(passes), key="collector_cost", config={"displaylogo": False})
st.subheader("Passes")
PASS_ROWS = 50
st.caption(f"Newest {min(PASS_ROWS, len(passes)):,} of {len(passes):,} passes in this window; the CSV has all of them.")
ui.table(passes, key="passes", filename="collector_passes.csv", height=400, static=True, rows=PASS_ROWS,
         hide=("collector_run_id", "details"), column_config={"api_cost_usd": st.column_config.NumberColumn("API cost USD", format="%.4f")})
