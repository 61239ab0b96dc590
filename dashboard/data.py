"""Every read the pages make, cached: the only module with ``st.cache_*`` and the only one that
calls ``store/`` and ``insights/``.

- ``settings()`` and ``engine()`` are ``st.cache_resource`` (one per server process, built on
  first use, never at import time).
- Reads are ``st.cache_data(ttl=TTL)`` keyed by their (hashable) arguments. Callers pass time
  windows rounded to the minute (``state.Filters``), so reruns within a minute hit the cache.
- Writes (anomaly status) clear the cached reads they affect.
- ``figure(charts.builder, *frames, ...)`` keeps a built chart until its inputs change
  (``FigureCache``, one per server in ``st.cache_resource``).

To add a read: a function here calling one store function (SQL lives in ``store/``) and, where
it needs one, an ``insights`` function; return DataFrames or plain values.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.config import DashboardConfig, app_arguments, dashboard_config
from insights import costs as cost_insights
from insights.anomaly import outside_text
from insights.buckets import rollup_runs
from insights.freshness import format_duration, freshness_table
from insights.rightsizing import rightsize
from insights.run_logs import NoLogLines, no_log_lines
from pipepulse.settings import DEMO_MARKER, Settings, load_settings
from store import anomalies as anomalies_store
from store import audit as audit_store
from store import costs as costs_store
from store import dashboard_reads as reads
from store import forecasts as forecasts_store
from store import invocations as invocations_store
from store import runs as runs_store
from store.collecting import log_read_at
from store.state import collector_runs_frame, first_pass_since

__all__ = [
    "TTL",
    "account_options",
    "region_options",
    "anomalies",
    "audit",
    "metric_unit",
    "value_text",
    "collector_runs",
    "collector_summary",
    "cost_by_day",
    "cost_movers",
    "cost_per_run",
    "daily_total_cost",
    "engine",
    "estimate_vs_bill",
    "failures",
    "figure",
    "finish_audit",
    "forecast",
    "forecast_models",
    "freshness",
    "health_grid",
    "kpis",
    "login_failures",
    "no_log_lines_reason",
    "pipeline_options",
    "run_daily",
    "lambda_rightsizing",
    "run_hourly",
    "run_detail",
    "run_invocations",
    "runs",
    "set_anomaly_status",
    "summarize_passes",
    "partial_days",
    "settings",
    "spend_month_to_date",
]

TTL = timedelta(seconds=60)


# ---- resources ---------------------------------------------------------------------------------


@st.cache_resource
def settings() -> Settings:
    """The settings, built once per server from the environment and ``--config`` after ``--``."""
    ns = app_arguments(sys.argv[1:])
    return load_settings(config_path=ns.config)


@st.cache_resource
def config() -> DashboardConfig:
    return dashboard_config(settings())


RETRY_SECONDS = 10  # while the database is unreachable, the app reruns this often


def database_down(exc: BaseException) -> str | None:
    """Why the database cannot be reached, one line without secrets, when ``exc`` is that
    (unreachable, restarted, connection lost); None for any other error."""
    from pipepulse.errors import SchemaError
    from pipepulse.redact import mask_url
    from store.db import is_database_error

    if isinstance(exc, SchemaError) or not is_database_error(exc):
        return None
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return mask_url(text.splitlines()[0] if text else type(exc).__name__)


@st.cache_resource
def engine() -> Engine:
    """One engine (pool) per server process; refuses a database with the wrong schema."""
    from store.db import check_schema, connect

    eng = connect(settings().database_url, create_dirs=False)
    check_schema(eng)
    return eng


# ---- figures -----------------------------------------------------------------------------------


class FigureCache:
    """Built figures, one per builder and arguments, a new one built when any argument differs.

    Frames are compared with ``DataFrame.equals`` (same columns, dtypes and values): 0.2-0.9 ms
    for the pages' frames, where Streamlit's own cache key (``hash_pandas_object`` of each frame
    and its dtypes) took 7-30 ms a frame, about what building the figure takes. The other
    arguments are compared by type and value. Holds the ``size`` most recently used argument
    sets; for each, the last frames seen (copies) and their figure."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[tuple, tuple[list[pd.DataFrame], go.Figure]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(builder: Callable[..., go.Figure], args: tuple, kwargs: dict) -> tuple[tuple, list[pd.DataFrame]] | None:
        """``(hashable key, frames)``: the frames stand in the key as their columns; None when an
        argument is neither a frame nor hashable."""
        frames: list[pd.DataFrame] = []
        parts: list[object] = [builder.__module__, builder.__qualname__]
        for name, value in [*enumerate(args), *sorted(kwargs.items())]:
            if isinstance(value, pd.DataFrame):
                frames.append(value)
                parts.append((name, pd.DataFrame, tuple(value.columns)))
            else:
                parts.append((name, type(value), value))
        key = tuple(parts)
        try:
            hash(key)
        except TypeError:
            return None
        return key, frames

    def get(self, builder: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
        """``builder(*args, **kwargs)``, or the figure built before from equal arguments."""
        found = self._key(builder, args, kwargs)
        if found is None:
            return _serialised(builder(*args, **kwargs))
        key, frames = found
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
        if hit is not None and all(a.equals(b) for a, b in zip(frames, hit[0], strict=True)):
            return hit[1]
        fig = _serialised(builder(*args, **kwargs))
        with self._lock:
            self._items[key] = ([f.copy() for f in frames], fig)  # copies: a caller may change its frame later
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return fig


def _serialised(fig: go.Figure) -> go.Figure:
    """``fig`` in its serialised form (numpy arrays already plotly's typed-array dicts): the JSON
    ``st.plotly_chart`` sends is the same, and its own ``to_dict`` has little left to convert."""
    return go.Figure(fig.to_dict(), _validate=False)


@st.cache_resource(show_spinner=False)
def _figures() -> FigureCache:
    return FigureCache()


def figure(builder: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """``builder(*args, **kwargs)`` (a ``charts`` function), built again only when an argument
    differs (frames by content): a warm rerun reads its frames from the cache, and building the
    same figures from them again was most of its time. Never a figure of other data or filters.
    One object is shared by every session, so nothing may change it (``st.plotly_chart`` copies it)."""
    return _figures().get(builder, *args, **kwargs)


# ---- filters' options --------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def pipeline_options(since: date) -> list[str]:
    configured = {p.name for p in settings().pipelines}
    with engine().connect() as conn:
        return sorted(configured | set(reads.pipeline_names(conn, since=since)))


@st.cache_data(ttl=timedelta(minutes=15), show_spinner=False)
def account_options(since: date) -> list[str]:
    with engine().connect() as conn:
        return reads.accounts(conn, since=since)


@st.cache_data(ttl=timedelta(minutes=15), show_spinner=False)
def region_options(since: date) -> list[str]:
    with engine().connect() as conn:
        return reads.regions(conn, since=since)


# ---- health ------------------------------------------------------------------------------------


# A window is compared with the one before it only when the stored history covers at least this
# share of that earlier window: a previous 90 days holding the first two runs ever is no baseline.
COVERED = 0.75


def _covers(first: datetime | date | None, start: datetime | date, end: datetime | date) -> bool:
    """Whether data that starts at ``first`` covers at least ``COVERED`` of ``[start, end)``."""
    return first is not None and first <= start + (end - start) * (1.0 - COVERED)


def _rates(stats: dict[str, float], p: dict[float, float | None], hours: float) -> dict[str, float | None]:
    """The KPIs of one window; ``hours``: the hours of it that hold data (throughput's divisor)."""
    terminal = stats["terminal"]
    return {
        "runs": stats["runs"],
        "failed": stats["failed"],
        "success_rate": (stats["succeeded"] / terminal * 100.0) if terminal else None,
        "p50": p.get(0.5),
        "p95": p.get(0.95),
        "records_out": stats["records_out"],
        "throughput_per_hour": stats["records_out"] / hours if hours > 0 else None,
        "retries": stats["retries"],
        "cost_usd": stats["cost_usd"],
    }


@st.cache_data(ttl=TTL, show_spinner=False)
def kpis(
    start: datetime, end: datetime, prev_start: datetime, prev_end: datetime, pipelines: tuple[str, ...] | None
) -> dict[str, Any]:
    """Run KPIs of the window (``current``) and of the previous window of the same length
    (``previous``); ``first_run``, when the stored run history starts; ``comparable``, whether
    that history covers the previous window (``COVERED``), so that changes against it mean
    something. Throughput counts only the hours from the first stored run on, so a window
    reaching back before the history is not diluted by hours with no data."""
    out: dict[str, Any] = {}
    with engine().connect() as conn:
        first = reads.first_run_start(conn, end, pipelines=pipelines)
        for name, (a, b) in {"current": (start, end), "previous": (prev_start, prev_end)}.items():
            stats = reads.run_window_stats(conn, a, b, pipelines=pipelines)
            q = reads.duration_quantiles(conn, a, b, pipelines=pipelines)
            hours = 0.0 if first is None else (b - max(a, first)).total_seconds() / 3600.0
            out[name] = _rates(stats, q, hours)
    out["first_run"] = first
    out["comparable"] = _covers(first, prev_start, prev_end)
    return out


@st.cache_data(ttl=TTL, show_spinner=False)
def health_grid(
    since: datetime, pipelines: tuple[str, ...] | None, per_pipeline: int = 24, until: datetime | None = None
) -> pd.DataFrame:
    """Each pipeline's newest ``per_pipeline`` runs started in ``[since, until)``."""
    with engine().connect() as conn:
        return reads.recent_runs(conn, since, pipelines=pipelines, per_pipeline=per_pipeline, until=until)


@st.cache_data(ttl=TTL, show_spinner=False)
def freshness(now: datetime, pipelines: tuple[str, ...] | None) -> pd.DataFrame:
    """Per configured pipeline: on time, late or missed against its schedule
    (``insights.freshness``), with the latest run's status, as they stood at ``now`` (the end of
    the window: "Up to" a past day shows that day's end)."""
    configs = [p for p in settings().pipelines if not pipelines or p.name in pipelines]
    cols = ["pipeline", "state", "kind", "due_at", "deadline", "last_success_at", "late_by", "message", "last_run_status", "last_started_at"]
    if not configs:
        return pd.DataFrame(columns=cols)
    # two days cover a daily schedule's current and previous slot; older successes come along
    names = [c.name for c in configs]
    with engine().connect() as conn:
        recent = runs_store.freshness_runs(conn, now=now, lookback=timedelta(days=2), pipelines=names)
        # the last success comes from `recent` (freshness_table): only the last start and status here
        last = reads.last_runs(conn, now - timedelta(days=35), pipelines=names, until=now, success=False)
    table = freshness_table(configs, recent, now=now)
    table = table.merge(last[["pipeline", "last_status", "last_started_at"]].rename(columns={"last_status": "last_run_status"}), on="pipeline", how="left")
    table["late_by"] = [None if pd.isna(v) else format_duration(v) for v in table["late_by"]]
    return table[cols]


@st.cache_data(ttl=TTL, show_spinner=False)
def failures(
    start: datetime, end: datetime, pipelines: tuple[str, ...] | None, limit: int = 50,
    accounts: tuple[str, ...] | None = None, regions: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Failed and timed-out runs started in ``[start, end)`` (of ``accounts`` and ``regions`` when
    given), newest first (``store.runs.recent_failures``)."""
    with engine().connect() as conn:
        frames = [
            runs_store.recent_failures(conn, since=start, until=end, pipeline=p, limit=limit, accounts=accounts, regions=regions)
            for p in (pipelines or (None,))
        ]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame.sort_values("started_at", ascending=False, kind="stable").head(limit).reset_index(drop=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def run_daily(start: date, end: date, pipelines: tuple[str, ...] | None) -> pd.DataFrame:
    """The daily rollup (one row per day and pipeline): the source of every run trend chart."""
    with engine().connect() as conn:
        return reads.run_daily_frame(conn, start, end, pipelines=pipelines)


@st.cache_data(ttl=TTL, show_spinner=False)
def run_hourly(start: datetime, end: datetime, pipelines: tuple[str, ...] | None) -> pd.DataFrame:
    """Runs started in ``[start, end)`` per hour and pipeline (``insights.buckets.rollup_runs``):
    the run trends of windows of a week or less, in the daily rollup's columns (``day`` is the hour)."""
    with engine().connect() as conn:
        return rollup_runs(reads.run_points(conn, start, end, pipelines=pipelines), "h")


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(
    start: datetime, end: datetime, pipelines: tuple[str, ...] | None, statuses: tuple[str, ...] | None = None, limit: int = 2000,
    accounts: tuple[str, ...] | None = None, regions: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    with engine().connect() as conn:
        return reads.runs_frame(conn, start, end, pipelines=pipelines, statuses=statuses, limit=limit,
                                accounts=accounts, regions=regions)


@st.cache_data(ttl=TTL, show_spinner=False)
def run_detail(run_id: str) -> tuple[dict[str, Any] | None, pd.DataFrame, pd.DataFrame]:
    """A run, its steps (every attempt) and its log lines (by run id or correlation id)."""
    with engine().connect() as conn:
        detail = runs_store.run_detail(conn, run_id)
        if detail is None:
            return None, pd.DataFrame(), pd.DataFrame()
        row, steps = dict(detail.run), detail.steps
        logs = reads.run_logs_frame(conn, run_id=run_id, correlation_id=row.get("correlation_id"))
        day = row["started_at"].date() if row.get("started_at") else None
        if day is not None:
            roll = reads.run_daily_frame(conn, day, day, pipelines=[row["pipeline"]])
            if not roll.empty and roll["runs"].iloc[0]:
                row["pipeline_day_cost_per_run"] = float(roll["cost_usd"].iloc[0] or 0) / float(roll["runs"].iloc[0])
    return row, steps, logs


@st.cache_data(ttl=TTL, show_spinner=False)
def run_invocations(run_id: str) -> pd.DataFrame:
    """The Lambda invocations (REPORT figures) of a run's pipeline that ended while the run ran."""
    with engine().connect() as conn:
        detail = runs_store.run_detail(conn, run_id)
        if detail is None or detail.run.get("started_at") is None:
            return pd.DataFrame()
        run = detail.run
        end = (run.get("ended_at") or run["started_at"]) + timedelta(minutes=1)
        return invocations_store.invocations_frame(conn, run["started_at"], end, pipeline=run["pipeline"])


@st.cache_data(ttl=TTL, show_spinner=False)
def lambda_rightsizing(start: datetime, end: datetime) -> pd.DataFrame:
    """Per Lambda function: the memory size its REPORT lines suggest and the monthly saving (an estimate)."""
    with engine().connect() as conn:
        usage = invocations_store.function_usage(conn, start, end)
    days = max((end - start).total_seconds() / 86400.0, 1 / 24)
    return rightsize(usage, days=days, price_gb_second=settings().prices.lambda_gb_second)


@st.cache_data(ttl=TTL)
def no_log_lines_reason(run_id: str) -> NoLogLines | None:
    """Why a run has no stored log lines (``insights.run_logs``): from the logs pass that looked
    for them, and whether this is the demo (its folder carries the demo's marker)."""
    with engine().connect() as conn:
        detail = runs_store.run_detail(conn, run_id)
        if detail is None:
            return None
        run = dict(detail.run)
        # the pass that read this run (its clock is the read's), else the first one after it was stored
        looked = first_pass_since(conn, "logs", log_read_at(conn, run_id) or run["updated_at"])
    return no_log_lines(run, looked, demo=(settings().data_dir / DEMO_MARKER).exists())


# ---- cost --------------------------------------------------------------------------------------

AMOUNT_COLUMNS = {"billed": "billed_cost", "effective": "effective_cost"}


def _daily_cost(
    conn, start: date, end: date, by: str | None, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None
) -> pd.DataFrame:
    """``store.costs.daily_cost`` for every chosen account x pipeline (it takes one of each)."""
    frames = [
        costs_store.daily_cost(conn, start, end, by=by, account=acc, pipeline=pipe)
        for acc in (accounts or (None,))
        for pipe in (pipelines or (None,))
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return costs_store.daily_cost(conn, start, start - timedelta(days=1), by=by)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


@st.cache_data(ttl=TTL, show_spinner=False)
def _cost_two_windows(
    start: date, end: date, by: str, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None
) -> pd.DataFrame:
    """Daily spend per ``by`` value over ``[start, end]`` and the window of the same length
    before it: one read for ``cost_by_day`` and ``cost_movers`` (a day's rows do not depend on
    the range they are read with)."""
    span = end - start + timedelta(days=1)
    with engine().connect() as conn:
        return _daily_cost(conn, start - span, end, by, accounts, pipelines)


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_by_day(
    start: date, end: date, by: str, amount: str, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None
) -> pd.DataFrame:
    """Daily spend per ``by`` value (columns day, key, cost), grouped in SQL by ``store.costs``."""
    frame = _cost_two_windows(start, end, by, accounts, pipelines)
    frame = frame[frame["day"] >= start]
    out = pd.DataFrame(
        {"day": pd.to_datetime(frame["day"]), "key": frame[by].astype(str), "cost": frame[AMOUNT_COLUMNS[amount]].astype(float)}
    )
    return out.groupby(["day", "key"], as_index=False)["cost"].sum()


@st.cache_data(ttl=TTL, show_spinner=False)
def daily_total_cost(
    start: date, end: date, amount: str, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None
) -> pd.DataFrame:
    """Daily total spend (day, cost)."""
    with engine().connect() as conn:
        frame = _daily_cost(conn, start, end, None, accounts, pipelines)
    out = pd.DataFrame({"day": pd.to_datetime(frame["day"]), "cost": frame[AMOUNT_COLUMNS[amount]].astype(float)})
    return out.groupby("day", as_index=False)["cost"].sum()


@st.cache_data(ttl=TTL, show_spinner=False)
def spend_month_to_date(
    today: date, amount: str, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None
) -> dict[str, float]:
    """Month-to-date spend and the same days of the previous month; ``comparable``: whether cost
    rows cover at least ``COVERED`` of those earlier days (as ``kpis``'s previous window)."""
    start = today.replace(day=1)
    prev_end = start - timedelta(days=1)
    prev_start = prev_end.replace(day=1)
    prev_to = min(prev_start + (today - start), prev_end)
    col = AMOUNT_COLUMNS[amount]
    with engine().connect() as conn:
        cur = _daily_cost(conn, start, today, None, accounts, pipelines)
        prev = _daily_cost(conn, prev_start, prev_to, None, accounts, pipelines)
    covered = prev["day"].nunique() / ((prev_to - prev_start).days + 1)
    return {"mtd": float(cur[col].sum()), "previous": float(prev[col].sum()), "has_data": not cur.empty,
            "comparable": covered >= COVERED}


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_movers(
    start: date, end: date, by: str, amount: str, accounts: tuple[str, ...] | None, pipelines: tuple[str, ...] | None, top: int = 10
) -> pd.DataFrame:
    """The ``top`` ``by`` values whose spend changed most against the previous window
    (``insights.costs.top_movers``): by, current, previous, change, change_pct."""
    frame = _cost_two_windows(start, end, by, accounts, pipelines)
    return cost_insights.top_movers(frame, by=by, start=start, end=end + timedelta(days=1), n=top, value=AMOUNT_COLUMNS[amount])


@st.cache_data(ttl=TTL, show_spinner=False)
def _run_summary_and_bill(start: date, end: date, pipelines: tuple[str, ...] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = datetime.combine(start, datetime.min.time(), UTC)
    b = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
    with engine().connect() as conn:
        parts = [runs_store.run_cost_summary(conn, a, b, pipeline=p) for p in (pipelines or (None,))]
        summary = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        billed = _daily_cost(conn, start, end, "pipeline", None, pipelines)
    return summary, billed


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_per_run(start: date, end: date, pipelines: tuple[str, ...] | None) -> pd.DataFrame:
    """Per pipeline: cost per run, per successful run and per million records
    (``insights.costs.unit_costs``: the tagged bill when there is one, else run estimates)."""
    summary, billed = _run_summary_and_bill(start, end, pipelines)
    if summary.empty:
        return cost_insights.unit_costs(summary.assign(pipeline=pd.Series(dtype=str)), billed)
    return cost_insights.unit_costs(summary, billed)


@st.cache_data(ttl=TTL, show_spinner=False)
def estimate_vs_bill(start: date, end: date, pipelines: tuple[str, ...] | None) -> pd.DataFrame:
    """Per pipeline: run-level estimates against the tagged bill (``insights.costs.estimate_vs_bill``)."""
    summary, billed = _run_summary_and_bill(start, end, pipelines)
    if summary.empty and billed.empty:
        return pd.DataFrame(columns=["pipeline", "estimate", "billed", "gap", "gap_pct"])
    return cost_insights.estimate_vs_bill(summary, billed)


@st.cache_data(ttl=TTL, show_spinner=False)
def forecast(subject: str = "total") -> tuple[dict[str, Any] | None, pd.DataFrame]:
    """The newest stored forecast snapshot for ``subject`` (pipepulse's own, else AWS's) and its points."""
    with engine().connect() as conn:
        for method in ("pipepulse", "aws"):
            found = forecasts_store.latest_forecast(conn, method, subject)
            if found is not None:
                snap, points = found
                points["day"] = pd.to_datetime(points["day"])
                return snap, points
    return None, pd.DataFrame(columns=["day", "mean", "lower", "upper"])


@st.cache_data(ttl=TTL, show_spinner=False)
def forecast_models() -> pd.DataFrame:
    """Per forecast series (pipepulse's newest snapshot of each subject): the model its own
    backtest chose, the backtest MAE and its ratio to last-value's and seasonal-naive's on the
    same points, interval coverage, and the last day trained on."""
    cols = ["subject", "model", "backtest_mae", "vs_last_value", "vs_seasonal_naive", "coverage", "train_end"]
    with engine().connect() as conn:
        snaps = forecasts_store.latest_snapshots(conn, method="pipepulse")
    if snaps.empty:
        return pd.DataFrame(columns=cols)
    mae = snaps["backtest_mae"].astype(float)

    def ratio(other: pd.Series) -> pd.Series:
        o = other.astype(float)
        r = mae / o.where(o > 0)
        return r.mask((o == 0) & (mae == 0), 1.0)  # both exact: a tie

    out = snaps.assign(vs_last_value=ratio(snaps["mae_last_value"]), vs_seasonal_naive=ratio(snaps["mae_seasonal_naive"]),
                       backtest_mae=mae)
    out["model"] = out["model"].fillna("(not stored)")
    order = out["subject"].ne("total")  # the account's total first, then the pipelines
    return out.assign(_o=order).sort_values(["_o", "subject"])[cols].reset_index(drop=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def partial_days(start: date, end: date) -> list[date]:
    """Days in ``[start, end]`` whose cost was collected before the day ended (``store.costs``)."""
    with engine().connect() as conn:
        return costs_store.partial_days(conn, start, end)


# ---- anomalies ---------------------------------------------------------------------------------


def _root_cause_text(raw: str | None) -> str:
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        items = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
    parts = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            impact = item.get("impact")
            impact_s = f" ({impact:+,.2f})" if isinstance(impact, int | float) else ""
            parts.append(f"{item.get('dimension', '?')}={item.get('value', '?')}{impact_s}")
    return "; ".join(parts)


def _nan(v: object) -> bool:
    return v is None or (isinstance(v, float) and v != v)


# the unit of an anomaly's values, by kind (a metric's unit is not stored on the anomaly)
UNITS = {"duration": "s", "throughput": "records", "metric": ""}


def metric_unit(subject: str) -> str:
    """What a metric anomaly's values are counted in: CloudWatch's GetMetricData gives no unit,
    so the metric's name (``Pipepulse/Reference/RecordsRejected{Pipeline=orders}`` ->
    ``RecordsRejected``)."""
    return subject.split("{", 1)[0].rsplit("/", 1)[-1]


def value_text(kind: str, value: object, currency: str = "USD", unit: str | None = None) -> str:
    """An anomaly's value with its unit: ``1,234 s``, ``12.5 USD``, ``3.0%`` (rates), ``56 records``,
    a metric's with ``unit`` (``metric_unit``); "" when missing."""
    if _nan(value):
        return ""
    v = float(value)  # type: ignore[arg-type]
    if kind == "cost":
        return f"{v:,.2f} {currency}"
    if kind in ("failure_rate", "rejected_rate"):
        return f"{v * 100:.1f}%"
    unit = unit or UNITS.get(kind, "")
    number = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"
    return f"{number} {unit}".strip()


@st.cache_data(ttl=TTL, show_spinner=False)
def anomalies(
    statuses: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] | None = None,
    pipelines: tuple[str, ...] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Anomalies (whose window overlaps ``[since, until)``) with a readable ``root_cause_text``
    and ``why_text`` (how far outside its band the observed value is,
    ``insights.anomaly.outside_text``); a snooze that has ended counts as open."""
    with engine().connect() as conn:
        parts = [
            anomalies_store.list_anomalies(conn, kind=k, pipeline=p, start=since, end=until)
            for k in (kinds or (None,))
            for p in (pipelines or (None,))
        ]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # newest incident first, as `pipepulse anomalies list` (store.anomalies.list_anomalies): one
    # detect pass gives every anomaly it sees the same last_seen, so that would order by fingerprint
    frame = frame.sort_values(["window_start", "fingerprint"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if frame.empty:
        for col in ("root_cause_text", "why_text", "observed_text", "expected_text", "band_text"):
            frame[col] = pd.Series(dtype=str)
        frame["effective_status"] = pd.Series(dtype=str)
        return frame
    now = datetime.now(UTC)
    expired = (frame["status"] == "snoozed") & (frame["snoozed_until"].notna()) & (frame["snoozed_until"] <= now)
    frame["effective_status"] = frame["status"].where(~expired, "open")
    frame["root_cause_text"] = [_root_cause_text(r) for r in frame["root_cause"]]
    frame["why_text"] = [outside_text(o, lo, hi) for o, lo, hi in zip(frame["observed"], frame["lower"], frame["upper"], strict=True)]
    cur = settings().currency
    units = [metric_unit(str(s)) if k == "metric" else None for k, s in zip(frame["kind"], frame["subject"], strict=True)]
    for col in ("observed", "expected"):
        frame[f"{col}_text"] = [value_text(k, v, cur, u) for k, v, u in zip(frame["kind"], frame[col], units, strict=True)]
    frame["band_text"] = [
        "" if _nan(lo) or _nan(hi) else f"{value_text(k, lo, cur, u)} to {value_text(k, hi, cur, u)}"
        for k, lo, hi, u in zip(frame["kind"], frame["lower"], frame["upper"], units, strict=True)
    ]
    if statuses:
        frame = frame[frame["effective_status"].isin(statuses)].reset_index(drop=True)
    return frame


def set_anomaly_status(
    fingerprint: str, status: str, *, by: str, client: str = "", note: str | None = None,
    snoozed_until: datetime | None = None,
) -> dict[str, Any]:
    """Store a status change with ``store.anomalies.set_status`` (who, when, note, snooze end;
    the digests read the same status), audited in the same transaction, and drop the cached
    reads. Raises InputError when the anomaly is gone or the snooze end is not in the future."""
    now = datetime.now(UTC)
    with engine().begin() as conn:
        row = anomalies_store.set_status(conn, fingerprint, status, by=by, now=now, note=note, snoozed_until=snoozed_until)
        detail = "; ".join(x for x in (note and f"note: {note}", snoozed_until and f"until {snoozed_until:%Y-%m-%d %H:%M}Z") if x)
        audit_store.record(conn, at=now, action=f"anomaly_{status}", outcome="ok", actor=by, client=client,
                           target=fingerprint, detail=detail or None)
    st.cache_data.clear()
    return row


# ---- the audit log and the login's rate limit (writes: never cached) ---------------------------


def audit(action: str, *, outcome: str, actor: str = "", client: str = "", target: str = "", detail: str | None = None) -> int:
    """Append an audit row now; its id."""
    with engine().begin() as conn:
        return audit_store.record(conn, at=datetime.now(UTC), action=action, outcome=outcome, actor=actor,
                                  client=client, target=target, detail=detail)


def finish_audit(audit_id: int, outcome: str, detail: str | None = None) -> None:
    with engine().begin() as conn:
        audit_store.finish(conn, audit_id, outcome, detail)


def login_failures(actor: str, client: str, since: datetime) -> tuple[list[datetime], list[datetime]]:
    """Failed sign-ins since the last success: for the user name, and from the client."""
    with engine().connect() as conn:
        return audit_store.login_failures(conn, actor=actor, client=client, since=since)


# ---- collectors --------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def collector_runs(since: datetime) -> pd.DataFrame:
    with engine().connect() as conn:
        return collector_runs_frame(conn, since=since)


@st.cache_data(ttl=TTL, show_spinner=False)
def collector_summary(since: datetime, now: datetime) -> pd.DataFrame:
    """Per source: last pass and status, how far its data reaches and the lag behind ``now``,
    failed passes, last error, rows written, API calls and their price since ``since``
    (``summarize_passes``)."""
    return summarize_passes(collector_runs(since), now)


def summarize_passes(passes: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """``collector_summary`` of the passes (newest first).

    ``data_through`` is the newest time a pass read up to: the end of its window, but never past
    the end of the pass itself. A daily source's window ends at the next midnight (Cost Explorer
    reads today's cost so far), which is in the future: its data reaches the time the pass ran.
    ``lag_minutes`` is ``now`` minus that, never negative."""
    rows = []
    for source, part in passes.groupby("source", sort=True):
        last = part.iloc[0]  # newest first
        ended = part["ended_at"].where(part["ended_at"].notna(), part["started_at"])
        reached = part["window_end"].where(part["window_end"].notna(), ended)
        reached = reached.where(reached <= ended, ended).dropna()
        through = reached.max() if not reached.empty else None
        lag = None if through is None or pd.isna(through) else max(0.0, round((now - through).total_seconds() / 60.0, 1))
        rows.append(
            {
                "source": source,
                "last_pass": last["started_at"],
                "last_status": last["status"],
                "data_through": through,
                "lag_minutes": lag,
                "passes": len(part),
                "failed_passes": int((part["status"] == "failed").sum()),
                "last_error": next((e for e in part["error"] if isinstance(e, str) and e), None),
                "rows": int(part["rows_written"].sum()),
                "api_calls": int(part["api_calls"].sum()),
                "api_cost_usd": float(part["api_cost_usd"].sum()),
            }
        )
    cols = ["source", "last_pass", "last_status", "data_through", "lag_minutes", "passes", "failed_passes", "last_error", "rows",
            "api_calls", "api_cost_usd"]
    return pd.DataFrame(rows, columns=cols)
