"""Costs: daily spend by dimension with its top movers and cost anomalies; the month-end forecast
against actual; cost per run and the estimate against the bill.

The three views are tabs bound to the ``view`` query parameter (a budget alert links to
``view=Forecast``), and only the open one is read and drawn: the whole page at once was five charts
and four tables, and a warm load took 1.3-1.7 times as long as a bare page drawing five charts.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import charts, data, state, ui

f = state.current()
cur = data.settings().currency
DIMENSIONS = ("service", "region", "usage_type", "account", "pipeline")
VIEWS = ("Spend", "Forecast", "Unit costs")
MAPE_MASE_HELP = (
    "MAPE (mean absolute percentage error): how far the backtest forecasts were from the actual spend, as a share of "
    "it (days without spend left out). MASE (mean absolute scaled error): the backtest's mean error divided by the "
    "mean error of 'same weekday last week' over the training days; below 1 beats that simple forecast."
)


def _amount(where: DeltaGenerator) -> str:
    """The Amount selector (billed or effective), drawn in ``where``."""
    return where.selectbox(
        "Amount", ("billed", "effective"), key="amount", bind="query-params", persist_state="page",
        help="billed: what the invoice says; effective: after amortised commitments and discounts",
    )


st.title("Costs")
spend_tab, forecast_tab, unit_tab = st.tabs(VIEWS, key="view", bind="query-params")

# Each view draws the selectors it uses (Spend both, Forecast the amount); they keep their values
# while another view is open, and the URL carries them whenever they are drawn.
if spend_tab.open:
    with spend_tab:
        a, b = st.columns(2)
        by = a.selectbox(
            "Group by", DIMENSIONS, key="by", bind="query-params", persist_state="page",
            help="The dimension of the daily spend chart and its movers",
        )
        amount = _amount(b)
        by_day = data.cost_by_day(f.start_day, f.end_day, by, amount, f.accounts, f.pipelines)
        if by_day.empty:
            ui.empty("No costs yet in this window", "pipepulse collect", "pipepulse costs import PATH")
        else:
            # the day the window's end cuts short, and the days before it collected before they ended
            partial_from = f.partial_day
            if partial_from is not None:
                late = set(data.partial_days(f.end_day - timedelta(days=6), f.end_day))
                while partial_from - timedelta(days=1) in late:
                    partial_from -= timedelta(days=1)
            st.plotly_chart(data.figure(charts.cost_stacked, by_day, by, currency=cur, partial_from=partial_from,
                                         window=(f.start_day, f.end_day + timedelta(days=1))),
                            key="cost_stacked", config=charts.CONFIG)
            blank = charts.key_label(by)  # spend without a value of ``by``: one name on the charts, tables and CSVs
            moved = data.cost_movers(f.start_day, f.end_day, by, amount, f.accounts, f.pipelines)
            moved = moved.assign(**{by: moved[by].replace("", blank)})
            # the table under the chart, not beside it: beside it, its five columns do not fit a 1024 px window
            st.plotly_chart(data.figure(charts.movers, moved, by, currency=cur), key="movers", config=charts.CONFIG)
            ui.table(
                moved,
                key="movers",
                filename=f"movers_by_{by}.csv",
                static=True,
                column_config={
                    "current": st.column_config.NumberColumn("this window", format="%.2f"),
                    "previous": st.column_config.NumberColumn("previous", format="%.2f"),
                    "change": st.column_config.NumberColumn("change", format="%+.2f"),
                    "change_pct": st.column_config.NumberColumn("change %", format="percent"),
                },
            )
            # drawn on request: an interactive grid is slow for the browser to set up
            if st.toggle("Daily spend as a table", key="by_day_table", help="Every day and key of the chart above, to sort, search or download"):
                ui.table(by_day.assign(key=by_day["key"].replace("", blank)).rename(columns={"key": by}), key="by_day",
                         filename=f"cost_by_{by}.csv")

        st.subheader("Cost anomalies")
        ca = data.anomalies(kinds=("cost",), pipelines=f.pipelines, since=f.start, until=f.end)
        if f.pipelines:
            # only a pipeline's own spend series is keyed by pipeline; the total, service, region,
            # account and usage type ones are the account's, so the filter leaves them out, and says so
            wide = data.anomalies(kinds=("cost",), since=f.start, until=f.end)
            n_wide = int(wide["pipeline"].isna().sum())
            st.caption(
                "Anomalies in the selected pipelines' tagged spend."
                + (f" {n_wide} account-wide cost {'anomaly' if n_wide == 1 else 'anomalies'} in this window (total, service, "
                   "region, account or usage type spend, not one pipeline's) not shown: clear the Pipelines filter to see "
                   f"{'it' if n_wide == 1 else 'them'}." if n_wide else "")
            )
        if ca.empty:
            st.success("No cost anomalies in this window" + (" for the selected pipelines." if f.pipelines else "."))
        else:
            view = ca[["effective_status", "severity", "subject", "window_start", "observed", "expected", "root_cause_text", "fingerprint"]]
            ui.table(view, key="cost_anomalies", filename="cost_anomalies.csv", static=True, hide=("fingerprint",), column_config={
                "effective_status": "status",
                "root_cause_text": st.column_config.TextColumn("root cause (by dollar impact)", width="large"),
                "window_start": st.column_config.DatetimeColumn("day", format="YYYY-MM-DD"),
            })

def _forecast(subject: str, pipeline: str | None, amount: str) -> None:
    """The forecast of ``subject`` ("total", or "pipeline:NAME" for ``pipeline``) against its actual spend."""
    suffix = "" if pipeline is None else f"_{pipeline}"
    snap, points = data.forecast(subject)
    if snap is None:
        if pipeline is None:
            ui.empty("No forecast yet", "pipepulse forecast")
        else:
            # not the total in its place: a filtered page showing the account's forecast reads as the pipeline's
            st.info(f"No forecast of pipeline {ui.esc(pipeline)}'s spend: pipepulse forecasts a pipeline when "
                    f"`[budgets.pipelines]` gives it a budget, at the next `pipepulse forecast snapshot`. "
                    "Clear the Pipelines filter for the account's total.", icon=":material/info:")
        return
    actual = data.daily_total_cost(min(f.start_day, snap["train_end"] or f.start_day), f.end_day, amount, f.accounts,
                                   None if pipeline is None else (pipeline,))
    # today is not over, nor is a day collected before it ended: drawn as partial
    partial_from = f.now.date()
    late = set(data.partial_days(f.end_day - timedelta(days=6), f.end_day))
    while partial_from - timedelta(days=1) in late:
        partial_from -= timedelta(days=1)
    st.plotly_chart(
        data.figure(charts.forecast_vs_actual, actual, points, level=snap.get("level"), currency=cur, partial_from=partial_from),
        key=f"forecast{suffix}", config=charts.CONFIG,
    )
    settings = data.settings()
    if pipeline is None:
        budget = settings.budget_monthly or snap.get("budget")
        set_budget = "Set [budgets] monthly in the config"
    else:
        budget = snap.get("budget") or settings.budgets_by_pipeline.get(pipeline)
        set_budget = f"Set [budgets.pipelines] {pipeline} in the config"
    crossed = snap.get("budget_cross_day")
    has_band = snap.get("month_end_lower") is not None
    model = snap.get("model")
    mae, lv, sn = (snap.get(k) for k in ("backtest_mae", "mae_last_value", "mae_seasonal_naive"))
    simple = [(v, name) for v, name in ((sn, "seasonal-naive"), (lv, "last-value")) if v is not None]
    best, best_name = min(simple, key=lambda x: x[0]) if simple else (None, "")
    ratio = None if mae is None or best is None else (mae / best if best > 0 else (1.0 if mae == 0 else None))
    # The backtest replays the model choice at every past origin (each picking from its own
    # history, not always today's model), so "1.06x seasonal-naive's error" beside "model
    # seasonal-naive" is no contradiction as long as the labels say what was measured.
    ui.tiles([
        ui.Tile(f"Month end ({cur})", f"{snap['month_end_mean']:,.0f}" if snap.get("month_end_mean") is not None else "n/a",
                f"{snap['month_end_lower']:,.0f} to {snap['month_end_upper']:,.0f}" if has_band else None, good="off",
                help=f"Forecast of the month's total, with its {snap['level'] * 100:.0f}% interval" if has_band else None),
        ui.Tile("Backtest MAE (model choice)", f"{mae:,.2f}" if mae is not None else "n/a",
                f"{ratio:.2f}x {best_name}'s error" if ratio is not None else None,
                change=0 if ratio is None or abs(ratio - 1) < 0.005 else (1 if ratio > 1 else -1), good="down",
                help=f"Mean absolute error ({cur}/day) of the model choice replayed over past days: at each past day "
                "the model was chosen again from the history up to that day (not always today's model) and forecast 1-7 "
                "days ahead. Against the better of last-value ('same as yesterday') and seasonal-naive ('same weekday "
                "last week') on the same days: below 1x beats both"),
        ui.Tile("Backtest MAPE", f"{snap['mape'] * 100:.1f}%" if snap.get("mape") is not None else "n/a",
                f"MASE {snap['mase']:.2f}" if snap.get("mase") is not None else None, good="off",
                help=MAPE_MASE_HELP),
        ui.Tile("Interval coverage", f"{snap['coverage'] * 100:.0f}%" if snap.get("coverage") is not None else "n/a",
                help=f"Share of backtest actuals inside the {snap['level'] * 100:.0f}% interval"),
        ui.Tile("Budget crossed", f"{crossed:%b %d}" if crossed else ("No" if budget else "no budget"),
                help=f"Day the forecast crosses the monthly budget of {budget:,.0f} {cur} (No: not this month)" if budget else set_budget),
    ], key=f"forecast_tiles{suffix}", columns=5)
    st.caption(MAPE_MASE_HELP)
    chosen = (f"model {ui.esc(model)} (chosen today from the series' history; the backtest figures replay the model "
              "choice over past days, where it could pick other models)") if model else "model not recorded"
    st.caption(f"Snapshot {snap['created_at']:%Y-%m-%d %H:%M} UTC, method {ui.esc(snap['method'])}, {chosen}, "
               f"trained {snap.get('train_start')} to {snap.get('train_end')}")


if forecast_tab.open:
    with forecast_tab:
        amount = _amount(st.columns(2)[0])
        if not f.pipelines:
            _forecast("total", None, amount)
        else:
            # each selected pipeline's own forecast: the snapshots hold no forecast of their sum
            st.caption(
                "The forecast of each selected pipeline's tagged spend (not the account's total)"
                + (", one after the other: no forecast of their sum is stored" if len(f.pipelines) > 1 else "")
            )
            for name in f.pipelines:
                if len(f.pipelines) > 1:
                    st.subheader(f"Pipeline {name}")
                _forecast(f"pipeline:{name}", name, amount)
        models = data.forecast_models()
        if not models.empty:
            st.subheader("Forecast models")
            ui.table(models, key="forecast_models", filename="forecast_models.csv", static=True, column_config={
                "subject": "series",
                "model": st.column_config.TextColumn("model", help="chosen today from the series' own history (its rolling-origin backtest)"),
                "backtest_mae": st.column_config.NumberColumn(f"choice's backtest MAE ({cur}/day)", format="%.2f",
                                                              help="the model choice replayed over past days: each day the "
                                                              "model was chosen again from the history up to it"),
                "vs_last_value": st.column_config.NumberColumn("choice vs last-value", format="%.2fx",
                                                               help="the replayed choice's MAE over last-value's on the same days: below 1 beats it"),
                "vs_seasonal_naive": st.column_config.NumberColumn("choice vs seasonal-naive", format="%.2fx",
                                                                   help="the replayed choice's MAE over seasonal-naive's on the same days: "
                                                                   "below 1 beats it (past days' choices need not be today's model)"),
                "coverage": st.column_config.NumberColumn("coverage", format="percent"),
                "train_end": st.column_config.DateColumn("trained to", format="YYYY-MM-DD"),
            })

if unit_tab.open:
    with unit_tab:
        st.subheader("Cost per run")
        unit = data.cost_per_run(f.start_day, f.end_day, f.pipelines)
        if unit.empty:
            ui.empty("No runs with cost estimates in this window", "pipepulse collect")
        else:
            # the table under the chart, not beside it: beside it, neither the table's columns nor the
            # chart's pipeline names fit (1024 and 1440 px windows alike)
            st.plotly_chart(data.figure(charts.cost_per_run, unit, currency=cur), key="cost_per_run", config=charts.CONFIG)
            ui.table(
                unit,
                key="unit",
                filename="cost_per_run.csv",
                static=True,
                # the cost and the per-run, per-successful-run and per-million-records columns stand
                # for the counts (the CSV has them): with them the table is wider than a 1024 px
                # window's page
                hide=("runs", "succeeded", "records_out"),
                column_config={
                    "cost": st.column_config.NumberColumn("cost", format="%.2f"),
                    "basis": st.column_config.TextColumn("basis", help="bill: tagged bill; estimate: run-level estimates"),
                    "failed_cost_usd": st.column_config.NumberColumn("on failed runs", format="%.2f"),
                    "retry_cost_usd": st.column_config.NumberColumn("on retries", format="%.2f"),
                    "cost_per_run": st.column_config.NumberColumn("per run", format="%.4f"),
                    "cost_per_successful_run": st.column_config.NumberColumn("per successful run", format="%.4f"),
                    "cost_per_million_records": st.column_config.NumberColumn("per million records", format="%.2f"),
                    "wasted_share": st.column_config.NumberColumn("wasted", format="percent"),
                },
            )

        st.subheader("Lambda right-sizing")
        sizing = data.lambda_rightsizing(f.start, f.end)
        if sizing.empty:
            ui.empty("No Lambda REPORT lines stored in this window",
                     "pipepulse collect --source logs (with [collectors.logs.lambda_functions])")
        else:
            saving = float(sizing["monthly_saving_usd"].sum())
            st.caption(
                f"An estimate: up to {saving:,.2f} {cur} a month at list price, if each function ran at the suggested "
                "memory size (its highest memory used plus 20%) with the same billed durations. Lambda gives CPU in "
                "proportion to memory, so a slower run may eat part of the saving: try the size before keeping it."
            )
            ui.table(sizing, key="rightsizing", filename="lambda_rightsizing.csv", static=True, column_config={
                "function_name": "function",
                # "invocations" is the header's longest word: with it the table is 7 px wider than a 1024 px page
                "invocations": st.column_config.NumberColumn("invoked", help="invocations in the window"),
                "memory_size_mb": st.column_config.NumberColumn("memory size (MB)"),
                "max_memory_used_mb": st.column_config.NumberColumn("max used (MB)"),
                "suggested_mb": st.column_config.NumberColumn("suggested (MB)"),
                "monthly_cost_usd": st.column_config.NumberColumn(f"{cur}/month now (estimate)", format="%.2f"),
                "monthly_saving_usd": st.column_config.NumberColumn(f"saving {cur}/month (estimate)", format="%.2f"),
            })

        st.subheader("Estimate against bill")
        evb = data.estimate_vs_bill(f.start_day, f.end_day, f.pipelines)
        if evb.empty:
            ui.empty("Nothing to compare yet", "pipepulse collect")
        else:
            # one under the other, as above
            st.plotly_chart(data.figure(charts.estimate_vs_bill, evb, currency=cur), key="estimate_vs_bill", config=charts.CONFIG)
            ui.table(evb, key="evb", filename="estimate_vs_bill.csv", static=True, column_config={
                "estimate": st.column_config.NumberColumn(format="%.2f"),
                "billed": st.column_config.NumberColumn(format="%.2f"),
                "gap": st.column_config.NumberColumn(format="%+.2f"),
                "gap_pct": st.column_config.NumberColumn("gap %", format="percent"),
            })
