"""What a digest reports: items per rule, and the health and spend context around them.

An ``Item`` is one thing a rule found (a failed run, a late pipeline, an anomaly, ...). Its
``key`` names the thing and stays the same while it exists; its ``version`` changes when the
thing changes in a way worth telling again (a worse severity, a new failure, late -> missed).
The version ends in ``|<severity>`` so the digest can tell an escalation from any other change.

To add a rule kind: a ``_<kind>(conn, rule, ...) -> list[Item]`` function below, registered in
``_FETCHERS``, and the kind in ``alerts.rules.KINDS``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

from alerts import links
from alerts.fmt import money
from alerts.rules import AlertConfig, Rule
from insights.freshness import check_freshness
from insights.rightsizing import rightsize
from pipepulse.settings import Settings
from pipepulse.vocab import SEVERITIES
from store import alerts as store_alerts
from store import anomalies as store_anomalies
from store import costs as store_costs
from store import forecasts as store_forecasts
from store import invocations as store_invocations
from store import runs as store_runs
from store import state as store_state

__all__ = [
    "Context",
    "Item",
    "Spend",
    "build_context",
    "fetch_items",
    "severity_rank",
]

SPARK_DAYS = 14


_RANGES = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)), ("90d", timedelta(days=90)))


def _range_for(window: timedelta) -> str:
    """The smallest dashboard range that shows ``window``."""
    return next((k for k, length in _RANGES if window <= length), "365d")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@dataclass(frozen=True, kw_only=True)
class Item:
    """One reportable thing found by one rule."""

    rule: str
    kind: str  # the rule kind: failed_runs, freshness, success_rate, anomalies, budget, collector_failing
    key: str
    version: str  # "<what changed>|<severity>"
    severity: str
    title: str  # one plain-text line
    link: str
    pipeline: str | None = None
    at: datetime | None = None  # when it happened (for ordering)
    reopened_at: datetime | None = None  # a change that goes through the suppression interval
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sort_key(self) -> tuple:
        ts = self.at.timestamp() if self.at else 0.0
        return (-severity_rank(self.severity), -ts, self.key)


@dataclass(frozen=True, kw_only=True)
class Spend:
    """Spend against forecast and budget for the digest's month."""

    month: str  # YYYY-MM
    month_to_date: float | None
    forecast_mean: float | None
    forecast_lower: float | None
    forecast_upper: float | None
    budget: float | None
    budget_cross_day: date | None
    daily: list[tuple[date, float]]  # the last SPARK_DAYS days, oldest first (0.0 where no rows)
    link: str

    @property
    def over_by(self) -> float | None:
        """Forecast month-end over budget as a share (0.12 = 12% over); None without both."""
        if self.forecast_mean is None or not self.budget:
            return None
        return self.forecast_mean / self.budget - 1.0

    @property
    def spent_over_by(self) -> float | None:
        """Month to date over budget as a share (0.08 = 8% over); None unless the budget is already passed."""
        if self.month_to_date is None or not self.budget or self.month_to_date <= self.budget:
            return None
        return self.month_to_date / self.budget - 1.0

    @property
    def status(self) -> str:
        """``over budget`` (month to date already past it), ``forecast over budget`` (only the
        forecast month end is), ``on track``, ``no budget`` or ``no forecast``."""
        if self.spent_over_by is not None:
            return "over budget"
        if self.forecast_mean is None:
            return "no forecast"
        if not self.budget:
            return "no budget"
        return "forecast over budget" if self.forecast_mean > self.budget else "on track"


@dataclass(kw_only=True)
class Context:
    """Everything a digest shows around its items."""

    period: str
    start: datetime
    end: datetime
    dashboard_url: str
    currency: str
    summary: pd.DataFrame  # run_summary over [start, end)
    spend: Spend
    still_open: list[Item] = field(default_factory=list)  # reported before, still open
    # weekly digests: Lambda right-sizing over the period (insights.rightsizing), an estimate
    rightsizing: pd.DataFrame = field(default_factory=pd.DataFrame)
    escalated: set[str] = field(default_factory=set)  # item keys sent again because they got worse

    @property
    def range_key(self) -> str:
        """The dashboard range that shows this period (``24h``, ``7d``)."""
        return links.PERIOD_RANGE[self.period]

    @property
    def to(self) -> date:
        """The UTC day the period ends on, for dashboard links."""
        return (self.end - timedelta(microseconds=1)).date()


def _f(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _ts(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    return value


# ---- one fetcher per rule kind ------------------------------------------------------------------


def _failed_runs(conn: Connection, rule: Rule, *, start: datetime, end: datetime, now: datetime, base: str, **_) -> list[Item]:
    df = store_alerts.failed_runs(conn, start, end, pipelines=rule.pipelines or None)
    items = []
    for r in df.itertuples(index=False):
        ended = _ts(r.ended_at) or _ts(r.started_at)
        severity = "high"
        error = ": ".join(x for x in (_none(r.error_type), _none(r.error_message)) if x)
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"run:{r.run_id}",
                version=f"{r.status}:{int(r.attempt)}|{severity}",
                severity=severity,
                title=f"{r.pipeline}: run {r.status.replace('_', ' ').lower()}",
                link=links.run_link(base, r.run_id),
                pipeline=r.pipeline,
                at=ended,
                fields={
                    "run_id": r.run_id,
                    "status": r.status,
                    "attempt": int(r.attempt),
                    "trigger": r.trigger,
                    "started_at": _ts(r.started_at),
                    "ended_at": ended,
                    "error_type": _none(r.error_type) or "",
                    "error_message": _none(r.error_message) or "",
                    "error": error or "(no error recorded)",
                },
            )
        )
    return items


def run_summary(conn: Connection, start: datetime, end: datetime, pipelines: Sequence[str] | None = None) -> pd.DataFrame:
    """Per pipeline, runs started in ``[start, end)``: runs, finished, succeeded, failed,
    success_rate, duration_p95, cost_usd (``store.runs.kpi_aggregates`` without the overall row)."""
    agg = store_runs.kpi_aggregates(conn, start, end)
    agg = agg[agg.index != store_runs.ALL]
    if pipelines:
        agg = agg[agg.index.isin(list(pipelines))]
    cols = ["runs", "finished", "succeeded", "failed", "success_rate", "duration_p95", "cost_usd"]
    out = agg[cols].reset_index().sort_values("pipeline", kind="stable").reset_index(drop=True)
    for c in ("runs", "finished", "succeeded", "failed"):
        out[c] = out[c].astype("int64")
    for c in ("success_rate", "duration_p95", "cost_usd"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


def _success_rate(conn: Connection, rule: Rule, *, now: datetime, base: str, **_) -> list[Item]:
    start = now - rule.window
    df = run_summary(conn, start, now, rule.pipelines or None)
    items = []
    for r in df.itertuples(index=False):
        rate = _f(r.success_rate)
        if rate is None or rate >= rule.threshold:
            continue
        severity = "high" if rate < rule.threshold - 0.2 else "medium"
        band = int(rate * 100) // 10 * 10  # re-tell when the rate falls into another 10-point band
        hours = rule.window.total_seconds() / 3600
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"success_rate:{r.pipeline}",
                version=f"band{band}|{severity}",
                severity=severity,
                title=f"{r.pipeline}: {rate:.0%} of runs succeeded in the last {hours:g} h (threshold {rule.threshold:.0%})",
                link=links.pipeline_link(base, r.pipeline, range_key=_range_for(rule.window), to=now.date()),
                pipeline=r.pipeline,
                at=now,
                fields={
                    "rate": rate,
                    "threshold": rule.threshold,
                    "succeeded": int(r.succeeded),
                    "finished": int(r.finished),
                    "failed": int(r.failed),
                    "window_hours": hours,
                },
            )
        )
    return items


def _root_cause(raw: Any) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except (TypeError, ValueError):
        return [{"dimension": "", "value": str(raw), "impact": None, "observed": None, "expected": None}]
    if not isinstance(parsed, list):
        return []
    out = []
    for p in parsed:
        if isinstance(p, Mapping):
            out.append(
                {
                    "dimension": str(p.get("dimension", "")),
                    "value": str(p.get("value", "")),
                    "impact": _f(p.get("impact")),
                    "observed": _f(p.get("observed")),
                    "expected": _f(p.get("expected")),
                }
            )
    return out


def _anomalies(conn: Connection, rule: Rule, *, now: datetime, base: str, **_) -> list[Item]:
    df = store_anomalies.list_anomalies(conn, status=("open", "snoozed"))
    # acknowledged and resolved never come back; snoozed ones only once their snooze has ended
    due = (df["status"] == "open") | (df["snoozed_until"].notna() & (df["snoozed_until"] <= pd.Timestamp(now)))
    wanted = df["severity"].map(severity_rank) >= severity_rank(rule.min_severity)
    df = df[due & wanted]
    if rule.pipelines:
        df = df[df["pipeline"].isin(list(rule.pipelines))]
    items = []
    for r in df.itertuples(index=False):
        # Reopened (status set back to open) or back from a snooze: a new version, told at once
        # even inside the suppression interval.
        back = _ts(r.status_at) if r.status == "open" else _ts(r.snoozed_until)
        marker = f"@{back:%Y%m%dT%H%M%S}" if back else ""
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"anomaly:{r.fingerprint}",
                version=f"v{int(r.version)}{marker}|{r.severity}",
                severity=r.severity,
                title=str(r.subject),
                link=links.anomaly_link(base, r.fingerprint),
                pipeline=_none(r.pipeline),
                at=_ts(r.last_seen),
                reopened_at=back,
                fields={
                    "fingerprint": r.fingerprint,
                    "anomaly_kind": r.kind,
                    "subject": r.subject,
                    "observed": _f(r.observed),
                    "expected": _f(r.expected),
                    "lower": _f(r.lower),
                    "upper": _f(r.upper),
                    "window_start": _ts(r.window_start),
                    "window_end": _ts(r.window_end),
                    "first_seen": _ts(r.first_seen),
                    "root_cause": _root_cause(r.root_cause),
                    "status": r.status,
                },
            )
        )
    return items


def _budget_for(subject: str, settings: Settings, snapshot_budget: float | None) -> float | None:
    if snapshot_budget:
        return snapshot_budget
    if subject == "total":
        return settings.budget_monthly
    if subject.startswith("pipeline:"):
        return settings.budgets_by_pipeline.get(subject.split(":", 1)[1])
    return None


def _latest_month_forecasts(conn: Connection, now: datetime) -> pd.DataFrame:
    df = store_forecasts.latest_snapshots(conn)
    if df.empty:
        return df
    month = now.strftime("%Y-%m")
    df = df[[(_ts(c) or now).strftime("%Y-%m") == month and _ts(c) <= now for c in df["created_at"]]]
    # One snapshot per subject: pipepulse's own method first, then the newest.
    df = df.assign(_own=(df["method"] != "pipepulse").astype(int)).sort_values(
        ["subject", "_own", "created_at"], ascending=[True, True, False]
    )
    return df.drop_duplicates("subject").drop(columns="_own").reset_index(drop=True)


def _budget(conn: Connection, rule: Rule, *, now: datetime, base: str, settings: Settings, **_) -> list[Item]:
    df = _latest_month_forecasts(conn, now)
    items = []
    month = now.strftime("%Y-%m")
    now.date().replace(day=1)
    for r in df.itertuples(index=False):
        subject = str(r.subject)
        pipeline = subject.split(":", 1)[1] if subject.startswith("pipeline:") else None
        if subject != "total" and pipeline is None:
            continue
        if pipeline is not None and not rule.covers(pipeline):
            continue
        if pipeline is None and rule.pipelines:
            continue
        budget = _budget_for(subject, settings, _f(r.budget))
        mean = _f(r.month_end_mean)
        if not budget or mean is None or mean <= budget * (1 + rule.tolerance):
            continue
        over = mean / budget - 1
        severity = "critical" if over >= 0.25 else "high" if over >= 0.10 else "medium"
        what = "Total spend" if pipeline is None else f"{pipeline} spend"
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"budget:{subject}:{month}",
                version=f"over|{severity}",
                severity=severity,
                title=(
                    f"{what} heading for {money(mean, settings.currency)} at month end, "
                    f"{over:.0%} over the {money(budget, settings.currency)} budget"
                ),
                link=links.costs_link(base, to=now.date(), view="Forecast"),
                pipeline=pipeline,
                at=_ts(r.created_at),
                fields={
                    "subject": subject,
                    "mean": mean,
                    "lower": _f(r.month_end_lower),
                    "upper": _f(r.month_end_upper),
                    "budget": budget,
                    "over": over,
                    "cross_day": _none(r.budget_cross_day),
                    "method": r.method,
                },
            )
        )
    return items


def collector_streaks(passes: pd.DataFrame) -> list[dict[str, Any]]:
    """Per source (``passes`` newest first, as ``store.state.collector_runs_frame`` gives them):
    the newest pass and the run of failed passes since the last success."""
    out = []
    done = passes[passes["status"].isin(["succeeded", "failed"])]
    for source, g in done.groupby("source", sort=True):
        streak = []
        for p in g.itertuples(index=False):
            if p.status != "failed":
                break
            streak.append(p)
        ok = g[g["status"] == "succeeded"]
        out.append(
            {
                "source": source,
                "last": g.iloc[0],
                "streak": streak,
                "last_success_at": _ts(ok["started_at"].iloc[0]) if len(ok) else None,
            }
        )
    return out


def _collector_failing(conn: Connection, rule: Rule, *, now: datetime, base: str, **_) -> list[Item]:
    passes = store_state.collector_runs_frame(conn, since=now - timedelta(days=7))
    items = []
    for s in collector_streaks(passes):
        streak = s["streak"]
        if len(streak) < rule.min_failures or not streak:
            continue
        first, last = streak[-1], streak[0]
        n = len(streak)
        severity = "high" if n >= 3 else "medium"
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"collector:{s['source']}",
                version=f"streak{int(first.collector_run_id)}|{severity}",
                severity=severity,
                title=f"collector {s['source']}: {n} failed pass{'es' if n != 1 else ''} in a row",
                link=links.collectors_link(base, range_key="7d", to=now.date()),
                at=_ts(last.started_at),
                fields={
                    "source": s["source"],
                    "failures": n,
                    "failing_since": _ts(first.started_at),
                    "last_success_at": s["last_success_at"],
                    "error": _none(last.error) or "(no error recorded)",
                },
            )
        )
    return items


FRESHNESS_LOOKBACK = timedelta(days=2)  # recent runs read to judge freshness (plus each pipeline's last success)


def _freshness(conn: Connection, rule: Rule, *, now: datetime, base: str, settings: Settings, **_) -> list[Item]:
    configs = [p for p in settings.pipelines if rule.covers(p.name)]
    if not configs:
        return []
    runs_df = store_runs.freshness_runs(conn, now=now, lookback=FRESHNESS_LOOKBACK, pipelines=[c.name for c in configs])
    items = []
    for cfg in configs:
        f = check_freshness(cfg, runs_df, now=now)
        if f.state not in {"late", "missed"}:
            continue
        severity = "high" if f.state == "missed" else "medium"
        anchor = f.due_at or f.deadline
        slot = f"{anchor:%Y%m%dT%H%M}" if anchor else "never"
        items.append(
            Item(
                rule=rule.name,
                kind=rule.kind,
                key=f"freshness:{cfg.name}:{slot}",
                version=f"{f.state}|{severity}",
                severity=severity,
                title=f"{cfg.name}: {f.message}",
                link=links.pipeline_link(base, cfg.name, range_key="7d", to=now.date()),
                pipeline=cfg.name,
                at=anchor or now,
                fields={
                    "state": f.state,
                    "schedule_kind": f.kind,
                    "expected_at": f.due_at,
                    "deadline": f.deadline,
                    "last_success_at": f.last_success_at,
                    "late_by": f.late_by,
                    "detail": f.message,
                    "owner": cfg.owner,
                },
            )
        )
    return items


_FETCHERS = {
    "failed_runs": _failed_runs,
    "success_rate": _success_rate,
    "anomalies": _anomalies,
    "budget": _budget,
    "collector_failing": _collector_failing,
    "freshness": _freshness,
}


def fetch_items(
    conn: Connection,
    rules: Sequence[Rule],
    *,
    settings: Settings,
    config: AlertConfig,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[Item]:
    """Every item each rule finds; time-bound kinds (failed runs) look at ``[start, end)``."""
    out: list[Item] = []
    for rule in rules:
        out.extend(
            _FETCHERS[rule.kind](
                conn, rule, start=start, end=end, now=now, base=config.dashboard_url, settings=settings
            )
        )
    return out


def build_context(
    conn: Connection,
    *,
    settings: Settings,
    config: AlertConfig,
    period: str,
    start: datetime,
    end: datetime,
    now: datetime,
    pipelines: Sequence[str] | None = None,
) -> Context:
    """The period's runs per pipeline and the month's spend against forecast and budget."""
    summary = run_summary(conn, start, end, pipelines or None)
    today = now.astimezone(UTC).date()
    first = today.replace(day=1)
    spark_start = today - timedelta(days=SPARK_DAYS)
    spend_rows = store_costs.daily_cost(conn, min(first, spark_start), today)
    by_day: dict[date, float] = defaultdict(float)
    for d, c in zip(spend_rows["day"], spend_rows["effective_cost"], strict=True):
        by_day[pd.Timestamp(d).date()] += float(c)
    daily = [(spark_start + timedelta(days=i), by_day.get(spark_start + timedelta(days=i), 0.0)) for i in range(SPARK_DAYS)]
    mtd_days = [c for d, c in by_day.items() if first <= d <= today]
    forecasts = _latest_month_forecasts(conn, now)
    total = forecasts[forecasts["subject"] == "total"] if not forecasts.empty else forecasts
    snap = total.iloc[0] if len(total) else None
    spend = Spend(
        month=now.strftime("%Y-%m"),
        month_to_date=sum(mtd_days) if mtd_days else None,
        forecast_mean=_f(snap["month_end_mean"]) if snap is not None else None,
        forecast_lower=_f(snap["month_end_lower"]) if snap is not None else None,
        forecast_upper=_f(snap["month_end_upper"]) if snap is not None else None,
        budget=_budget_for("total", settings, _f(snap["budget"]) if snap is not None else None),
        budget_cross_day=_none(snap["budget_cross_day"]) if snap is not None else None,
        daily=daily,
        link=links.costs_link(config.dashboard_url, to=today),
    )
    sizing = pd.DataFrame()
    if period == "weekly":
        usage = store_invocations.function_usage(conn, start, end)
        days = max((end - start).total_seconds() / 86400.0, 1 / 24)
        sizing = rightsize(usage, days=days, price_gb_second=settings.prices.lambda_gb_second)
    return Context(
        period=period,
        start=start,
        end=end,
        dashboard_url=config.dashboard_url,
        currency=settings.currency,
        summary=summary,
        spend=spend,
        rightsizing=sizing,
    )
