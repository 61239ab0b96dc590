"""Overview: is anything broken, late or expensive right now?"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, data, state, ui

f = state.current()
s = data.settings()
cur = s.currency


def _change(x: float, fmt: str, then: str = "") -> tuple[str, int]:
    """A change ``x`` as ``fmt`` shows it (followed by ``then``), and its sign: 0 when the shown
    number rounds it to zero."""
    shown = fmt.format(x)
    return shown + then, 0 if not any(ch in "123456789" for ch in shown) else (x > 0) - (x < 0)


def _tile(k: dict, key: str, label: str, fmt: str, delta_fmt: str, good: str = "up", help: str | None = None) -> ui.Tile:
    """A tile of ``k["current"][key]`` with its change against ``k["previous"][key]``, shown only
    when the stored history covers the previous window (``data.kpis``'s ``comparable``)."""
    a, b = k["current"].get(key), k["previous"].get(key)
    value = "n/a" if a is None else fmt.format(a)
    if a is None or b is None or not k["comparable"]:
        return ui.Tile(label, value, help=help)
    return ui.Tile(label, value, *_change(a - b, delta_fmt), good, help)


st.title("Overview")
caption = st.empty()  # says what the changes compare with, once the KPIs are read

# The tiles are drawn into this slot after the health grid: its chart reaches the browser first
# and plotly's script (slow to load in a new browser) loads while the tiles' reads run.
tiles = st.container()

st.subheader("Pipeline health")
grid = data.health_grid(f.end - timedelta(days=7) if f.range == "24h" else f.start, f.pipelines, until=f.end)
left, right = st.columns([3, 2])
with left:
    if grid.empty:
        ui.empty("No runs to show", "pipepulse collect")
    else:
        st.plotly_chart(data.figure(charts.health_grid, grid), key="health_grid", config=charts.CONFIG)
with tiles:
    k = data.kpis(f.start, f.end, f.prev_start, f.prev_end, f.pipelines)
    now_k, prev_k = k["current"], k["previous"]
    if k["comparable"] or k["first_run"] is None:
        caption.caption(f"Last {f.range} against the {f.range} before")
    else:
        caption.caption(
            f"Last {f.range}. No changes shown: the stored runs start {k['first_run']:%Y-%m-%d %H:%M} UTC, "
            f"so the {f.range} before hold too little to compare with"
        )

    row = [
        _tile(k, "success_rate", "Success rate", "{:.1f}%", "{:+.1f} pts"),
        _tile(k, "p95", "p95 duration", "{:,.0f} s", "{:+,.0f} s", good="down"),
        _tile(k, "throughput_per_hour", "Throughput (records/h)", "{:,.0f}", "{:+,.0f}", help="Records out per hour of the window, counted from the first stored run on: hours before the run history starts do not count"),
        _tile(k, "failed", "Failed runs", "{:,.0f}", "{:+,.0f}", good="down"),
    ]

    spend = data.spend_month_to_date(f.end_day, "billed", f.accounts, f.pipelines)
    snap, _points = data.forecast("total")
    open_anoms = data.anomalies(statuses=("open",), pipelines=f.pipelines)
    if spend["has_data"]:
        shown, sign = _change(spend["mtd"] - spend["previous"], "{:+,.0f}", " vs last month")
        row.append(ui.Tile(
            "Spend month to date", f"{spend['mtd']:,.0f} {cur}", shown if spend["comparable"] else None, sign, "down",
            help=f"Billed {f.end_day:%B} 1 to {f.end_day.day}, against the same days of the month before "
                 "(a change is shown when cost rows cover most of those days)",
        ))
    else:
        row.append(ui.Tile("Spend month to date", "no cost data"))
    budget = s.budget_monthly if s.budget_monthly is not None else (snap or {}).get("budget")
    month = f.end_day.replace(day=1)
    if month < f.now.date().replace(day=1):
        # "Up to" a day of a past month: that month's whole bill against the budget, not the
        # current month's forecast next to a past month's spend
        last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        whole = data.spend_month_to_date(last, "billed", None, None)
        label = f"Spend in {month:%B %Y}"
        if whole["has_data"]:
            shown, sign = _change(whole["mtd"] - budget, "{:+,.0f}", f" vs budget {budget:,.0f}") if budget else (None, 0)
            row.append(ui.Tile(
                label, f"{whole['mtd']:,.0f} {cur}", shown, sign, "down",
                help=f"Billed in all of {month:%B %Y}, all accounts and pipelines, against the monthly budget",
            ))
        else:
            row.append(ui.Tile(label, "no cost data"))
    elif snap is not None and snap.get("month_end_mean") is not None:
        mean = snap["month_end_mean"]
        band = ""
        if snap.get("month_end_lower") is not None and snap.get("month_end_upper") is not None:
            band = f" ({snap['month_end_lower']:,.0f}-{snap['month_end_upper']:,.0f})"
        shown, sign = _change(mean - budget, "{:+,.0f}", f" vs budget {budget:,.0f}") if budget else (None, 0)
        row.append(ui.Tile(
            "Forecast month end", f"{mean:,.0f} {cur}", shown, sign, "down",
            help=f"Forecast snapshot {snap['created_at']:%Y-%m-%d %H:%M} UTC{band}",
        ))
    else:
        row.append(ui.Tile("Forecast month end", "no forecast", help="Run `pipepulse forecast` after collecting costs"))
    row.append(ui.Tile("Open anomalies", f"{len(open_anoms):,}"))
    row.append(_tile(k, "runs", "Runs", "{:,.0f}", "{:+,.0f}", good="off"))
    ui.tiles(row, key="kpis")

    if now_k["runs"] == 0 and prev_k["runs"] == 0:
        ui.empty("No runs in this window", "pipepulse collect")
    if not spend["has_data"]:
        ui.empty("No costs yet", "pipepulse collect", "pipepulse costs import PATH")

with right:
    fresh = data.freshness(f.end, f.pipelines)
    if fresh.empty:
        ui.empty("No pipelines yet", "pipepulse collect")
    else:
        ui.table(
            fresh[["pipeline", "state", "message", "last_run_status", "last_success_at"]],
            key="freshness",
            filename="freshness.csv",
            static=True,
            hide=("last_run_status", "last_success_at"),  # a narrow column: the CSV and Pipelines have them
            column_config={
                "last_success_at": st.column_config.DatetimeColumn("last success", format="YYYY-MM-DD HH:mm"),
                "last_run_status": "last run",
                "state": st.column_config.TextColumn("state", width="small"),  # on one line, not "on_ / time"
                "message": st.column_config.TextColumn("freshness", width="medium"),
            },
        )

st.subheader("Recent failures")
fails = data.failures(f.start, f.end, f.pipelines, accounts=f.accounts, regions=f.regions)
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
        hide=("attempt", "run_id"),  # the link opens the run; the CSV has both
        column_config={
            "open": st.column_config.LinkColumn("run", display_text="details", width="small"),
            "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
            "error_message": st.column_config.TextColumn("error", width="large"),
        },
    )
