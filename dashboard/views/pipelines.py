"""Pipelines: run history, duration and throughput trends with anomalies marked, freshness."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, data, state, ui
from pipepulse.vocab import AWAITING_RETRY, QUEUED, RUNNING, TERMINAL

f = state.current()

st.title("Pipelines")
names = ", ".join(f.pipelines) if f.pipelines else "all pipelines"
if f.bucket == "hour":
    st.caption(f"{ui.esc(names)}, last {f.range}, per hour.")
    daily = data.run_hourly(f.start, f.end, f.pipelines)
    window = (f.start, f.end)
else:
    st.caption(f"{ui.esc(names)}, last {f.range}, per day (from the daily rollup).")
    daily = data.run_daily(f.start_day, f.end_day, f.pipelines)
    window = (f.start_day, f.end_day + timedelta(days=1))
trend = {"bucket": f.bucket, "window": window, "partial_from": f.partial_from}
if daily.empty:
    ui.empty("No runs in this window", "pipepulse collect")
else:
    marks = data.anomalies(kinds=("duration",), pipelines=f.pipelines, since=f.start)
    tmarks = data.anomalies(kinds=("throughput",), pipelines=f.pipelines, since=f.start)
    # one chart a row: side by side at 1024 px each was 260 px wide, its ticks turned on end and its
    # legend ran into them (tests/dashboard/test_dashboard_browser.py checks the charts' text)
    st.plotly_chart(data.figure(charts.duration_trend, daily, marks, **trend), key="duration_trend", config=charts.CONFIG)
    st.plotly_chart(data.figure(charts.throughput_trend, daily, tmarks, **trend), key="throughput_trend", config=charts.CONFIG)
    st.plotly_chart(data.figure(charts.runs_by_status, daily, **trend), key="runs_by_status", config=charts.CONFIG)

st.subheader("Freshness against schedule")
fresh = data.freshness(f.end, f.pipelines)
if fresh.empty:
    ui.empty("No pipelines yet", "pipepulse collect")
else:
    ui.table(
        fresh,
        key="freshness",
        filename="freshness.csv",
        static=True,
        hide=("kind", "deadline", "late_by", "last_started_at"),  # the message says how late; the CSV has them
        column_config={
            "last_started_at": st.column_config.DatetimeColumn("last start", format="YYYY-MM-DD HH:mm"),
            "last_success_at": st.column_config.DatetimeColumn("last success", format="YYYY-MM-DD HH:mm"),
            "state": st.column_config.TextColumn("state", width="small"),  # on one line, not "on_ / time"
            "due_at": st.column_config.DatetimeColumn("due", format="YYYY-MM-DD HH:mm"),
            "deadline": st.column_config.DatetimeColumn("deadline", format="YYYY-MM-DD HH:mm"),
            "message": st.column_config.TextColumn("freshness", width="large"),
        },
    )

st.subheader("Run history")
# The status filter sits in a popover, whose widgets the browser draws only when it is opened (a
# multiselect drawn on the page slows every load of it).
statuses = st.popover("Status", icon=":material/filter_list:").multiselect(
    "Status", [*TERMINAL, RUNNING, QUEUED, AWAITING_RETRY],
    key="status", bind="query-params", placeholder="All statuses",
)
HISTORY_ROWS = 1000
LATEST_ROWS = 25
browse = st.toggle(
    "Sort and search", key="browse", bind="query-params",
    help=f"Show the newest {HISTORY_ROWS:,} matching runs in an interactive grid (sort, search, resize)",
)
which = ui.esc(", ".join(statuses)) + " runs" if statuses else "runs of every status"
history = data.runs(f.start, f.end, f.pipelines, tuple(statuses) or None, limit=HISTORY_ROWS, accounts=f.accounts,
                    regions=f.regions)
if history.empty:
    st.info(f"No {which} in this window." if statuses else "No runs in this window.")
else:
    view = history[["started_at", "pipeline", "status", "trigger", "attempt", "duration_seconds", "records_in", "records_out", "records_rejected", "retries", "cost_usd", "error_message", "run_id"]].copy()
    view.insert(0, "open", [ui.run_link(r) for r in view["run_id"]])
    more = "narrow the window, the pipelines or the status to see older ones"
    if not browse and len(history) > LATEST_ROWS:
        st.caption(f"Newest {LATEST_ROWS} of {len(history):,}{'+' if len(history) >= HISTORY_ROWS else ''} {which}; "
                   f"switch on Sort and search to browse them, download them as CSV, or {more}.")
    elif len(history) >= HISTORY_ROWS:
        st.caption(f"Newest {HISTORY_ROWS:,} {which} shown; {more}.")
    else:
        st.caption(f"{len(history):,} {which}.")
    ui.table(
        view,
        key="history",
        filename="runs.csv",
        height=420,
        static=not browse,
        rows=LATEST_ROWS,
        # the static table shows what fits a 1024 px window; the grid and the CSV have every column
        hide=() if browse else ("trigger", "attempt", "records_in", "records_rejected", "retries", "run_id"),
        column_config={
            "open": st.column_config.LinkColumn("run", display_text="details", width="small"),
            "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
            "duration_seconds": st.column_config.NumberColumn("duration s", format="%.0f"),
            "cost_usd": st.column_config.NumberColumn("cost", format="%.4f"),
            "error_message": st.column_config.TextColumn("error", width="medium"),
        },
    )
