"""``run``: anomaly detection over what the store holds, results stored by fingerprint.

A recipe (``detect_anomalies``, then ``run`` stores): read the settings -> read the history
(planned windows, runs, metric points, daily cost) -> scan each kind of series with the one
detector family of ``insights.anomaly`` and group anomalous points into incidents: CloudWatch
metric series; per pipeline, duration and records per run of the succeeded runs per hour,
failure rate and rejected-record rate per day; daily cost in total and per service, region,
usage type and pipeline, each with its root cause -> upsert every incident by fingerprint.

Settings, all optional, under ``[anomalies]``::

    sensitivity = 2.0            # threshold multiplier of the learned deviation quantile (runs, cost)
    metric_sensitivity = 1.2     # the same for CloudWatch metrics; unset: the detector's own
                                 # (insights.anomaly.INTRADAY_SENSITIVITY, chosen on NAB)
    lookback_days = 14           # metric history scanned
    runs_lookback_days = 90      # run history (aggregated per hour / day) scanned
    cost_lookback_days = 90
    cost_floor_usd = 1.0         # a cost change smaller than this never alerts
    cost_rel_floor = 0.2         # ... nor one smaller than 20% of the expected day
    duration_floor_seconds = 60
    throughput_floor_records = 100  # records per run
    failure_rate_floor = 0.2     # failure-rate change (0..1) that can alert
    rejected_rate_floor = 0.05   # change in the share of records rejected by validation (bad data)
    metric_rel_floor = 0.0
    [anomalies.metric_floors]    # absolute floors per CloudWatch metric, by name or Namespace/Name
    Retries = 5.0                # (default) retries the retry policy absorbed are routine
    # (default) Pipepulse/Reference Duration and StageDuration: duration_floor_seconds

Which defaults: a CloudWatch metric gets the detector's intraday defaults
(``DetectorConfig.for_step``, chosen on NAB's labelled series, bench/nab_loco.py); a run
aggregate (duration and records per run per hour, a per-run metric) gets ``for_runs`` (the
spans checked on the demo's injected incidents, bench/demo_eval.py) with a weekly gate beside
the daily one, and is judged once it has a week of history; daily series get the daily
defaults (weekly seasonality).

A bucket is judged once it has ended: the current day of cost and of the daily failure and
rejected rates, the current hour of the hourly run aggregates and a CloudWatch period that
has not ended yet are left out of the scan (a partial day's spend is not a drop, and one
failed run of the day's first one is not a 100% failure rate); they are judged on the first
pass after they end.

A pipeline's CloudWatch ``Sum`` series whose periods line up with its runs' ends is judged per
run (the period's sum over the runs that ended in it; see ``_per_run``): an hourly sum of
metrics emitted once per run otherwise doubles whenever two runs end in one hour.
    [[anomalies.planned]]        # planned windows (besides the maintenance_windows table)
    subject = "nightly-etl"      # a pipeline, a subject, or "*"
    start = 2026-11-01T02:00:00Z
    end = 2026-11-01T04:00:00Z
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from insights.anomaly import (
    DetectorConfig,
    ScanResult,
    events,
    fingerprint,
    planned_mask,
    scan_frame,
    scan_matrix,
)
from insights.rootcause import DIMENSIONS, root_cause
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt, require_table
from pipepulse.vocab import ALL, FAILURES, SUCCEEDED, TERMINAL
from store.anomalies import (
    maintenance_windows_frame,
    metric_points_frame,
    metric_series_frame,
    upsert_anomalies,
)
from store.costs import daily_cost
from store.runs import runs_frame

__all__ = ["AnomalySettings", "DetectionSummary", "anomaly_settings", "detect_anomalies", "run"]

DETECTOR = "pipepulse-online-1"


DEFAULT_METRIC_FLOORS = {"Retries": 5.0}
REFERENCE_NAMESPACE = "Pipepulse/Reference"  # the reference pipeline's metrics (docs/CONTRACTS.md)
PER_RUN_SHARE = 0.9  # a Sum series whose periods line up with run ends this often is per-run


# Runs follow the business week too (quieter weekends): an hour of a run series is anomalous
# only when it is also outside what the same hours of the same weekday looked like in earlier
# weeks (the daily gate alone made a weekend's first hours look like a drop)
WEEK = 7 * 86_400.0


def _week_of(step: float) -> int:
    """A week in points: a run series is judged once a weekly gate has a week to compare with
    (before that, the first quiet weekend read as a drop on the demo)."""
    return max(1, int(round(WEEK / step)))


@dataclass(frozen=True, kw_only=True)
class AnomalySettings:
    """The ``[anomalies]`` section, validated."""

    sensitivity: float = 2.0
    metric_sensitivity: float | None = None  # None: insights.anomaly.INTRADAY_SENSITIVITY
    lookback_days: int = 14
    runs_lookback_days: int = 90
    cost_lookback_days: int = 90
    cost_floor_usd: float = 1.0
    cost_rel_floor: float = 0.2
    duration_floor_seconds: float = 60.0
    throughput_floor_records: float = 100.0
    failure_rate_floor: float = 0.2
    rejected_rate_floor: float = 0.05
    metric_rel_floor: float = 0.0
    # A sparse count such as Retries sits at 0 and jumps to 1 or 2 whenever a transient error
    # is retried; without an absolute floor every such hour would be "infinitely" anomalous.
    metric_floors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_METRIC_FLOORS))
    planned: tuple[tuple[str, datetime, datetime], ...] = ()


@dataclass
class DetectionSummary:
    """What a detection pass did."""

    series_scanned: int = 0
    anomalies: int = 0
    inserted: int = 0
    updated: int = 0
    reopened: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items())) or "none"
        return (f"{self.series_scanned} series scanned; {self.anomalies} anomalies ({kinds}); "
                f"{self.inserted} new, {self.updated} updated, {self.reopened} reopened")


def anomaly_settings(settings: Settings) -> AnomalySettings:
    """Parse ``[anomalies]`` (errors name the file, the key and what was expected)."""
    label, where = settings.config_label, "anomalies"
    table = settings.section("anomalies")
    known = {f for f in AnomalySettings.__dataclass_fields__}
    check_keys(table, "anomalies", label, known=known)
    values: dict[str, Any] = {}
    for key in ("sensitivity", "metric_sensitivity", "cost_floor_usd", "cost_rel_floor", "duration_floor_seconds",
                "throughput_floor_records", "failure_rate_floor", "rejected_rate_floor", "metric_rel_floor"):
        v = opt(table, key, (int, float), label, where)
        if v is not None:
            positive = key in ("sensitivity", "metric_sensitivity")
            if v < 0 or (positive and v == 0):
                raise ConfigError(f"{label}: [anomalies] {key}: expected a {'positive' if positive else 'non-negative'} number, got {v!r}")
            values[key] = float(v)
    for key in ("lookback_days", "runs_lookback_days", "cost_lookback_days"):
        v = opt(table, key, int, label, where)
        if v is not None:
            if v < 2:
                raise ConfigError(f"{label}: [anomalies] {key}: expected at least 2 days, got {v}")
            values[key] = v
    floors = require_table(table.get("metric_floors", {}), label, "anomalies.metric_floors")
    if floors:
        merged = dict(DEFAULT_METRIC_FLOORS)
        for name, v in floors.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{label}: [anomalies.metric_floors] {name}: expected a non-negative number, got {v!r}")
            merged[name] = float(v)
        values["metric_floors"] = merged
    planned = table.get("planned", [])
    if not isinstance(planned, list):
        raise ConfigError(f"{label}: [anomalies] planned: expected an array of tables ([[anomalies.planned]])")
    items = []
    for i, item in enumerate(planned):
        w = f"anomalies.planned #{i + 1}"
        item = require_table(item, label, w)
        start, end = _when(item.get("start"), label, w, "start"), _when(item.get("end"), label, w, "end")
        if end <= start:
            raise ConfigError(f"{label}: [{w}] end must be after start")
        items.append((opt(item, "subject", str, label, w, default="*"), start, end))
    values["planned"] = tuple(items)
    return AnomalySettings(**values)


def _when(v: Any, label: str, where: str, key: str) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, str):
        try:
            ts = pd.Timestamp(v)
        except ValueError:
            ts = None
        if ts is not None:
            return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
    raise ConfigError(f"{label}: [{where}] {key}: expected a date-time like 2026-11-01T02:00:00Z, got {v!r}")


def run(settings: Settings, engine: Engine, *, now: datetime) -> DetectionSummary:
    """Scan every stored series, store incidents by fingerprint; returns what it did."""
    rows, summary = detect_anomalies(settings, engine, now=now)
    with engine.begin() as conn:
        counts = upsert_anomalies(conn, rows, now=now)
    summary.inserted, summary.updated, summary.reopened = counts.inserted, counts.updated, counts.reopened
    return summary


def detect_anomalies(settings: Settings, engine: Engine, *, now: datetime) -> tuple[list[dict[str, Any]], DetectionSummary]:
    """What ``run`` would store (one row per incident), without storing it."""
    cfg = anomaly_settings(settings)
    with engine.connect() as conn:
        history = _read_history(conn, cfg, now)
    summary = DetectionSummary()
    rows = [
        *_metric_incidents(history, cfg, summary),
        *_run_incidents(history, cfg, summary),
        *_cost_incidents(history, cfg, summary),
    ]
    return rows, summary


@dataclass
class _History:
    """What detection reads from the store: planned windows, runs, metric points, daily cost."""

    planned: list[tuple[str, datetime, datetime]]
    runs: pd.DataFrame  # runs that started in the runs lookback
    series: pd.DataFrame  # every metric series
    points: pd.DataFrame  # their points in the metric lookback
    cost_total: pd.DataFrame  # daily cost in the cost lookback
    cost_by: dict[str, pd.DataFrame]  # ... per root-cause dimension
    now: datetime  # buckets that have not ended by then are left out (``_ended``)


def _read_history(conn: Connection, cfg: AnomalySettings, now: datetime) -> _History:
    # Align the scanned history to whole days so repeated passes see the same start.
    start = (now - timedelta(days=cfg.lookback_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    runs_start = (now - timedelta(days=cfg.runs_lookback_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    cost_start = (now - timedelta(days=cfg.cost_lookback_days)).date()
    windows = maintenance_windows_frame(conn, end=now)
    runs = runs_frame(conn, runs_start, now)
    if not runs.empty:
        runs = runs[runs["started_at"].notna()]
    series = metric_series_frame(conn)
    points = metric_points_frame(conn, start, now) if not series.empty else pd.DataFrame(columns=["series_id", "ts", "value"])
    return _History(
        planned=[(r.subject, r.starts_at, r.ends_at) for r in windows.itertuples()] + list(cfg.planned),
        runs=runs,
        series=series,
        points=points,
        cost_total=daily_cost(conn, cost_start, _last_ended_day(now)),
        cost_by={dim: daily_cost(conn, cost_start, _last_ended_day(now), by=dim) for dim in DIMENSIONS},
        now=now,
    )


def _metric_incidents(h: _History, cfg: AnomalySettings, summary: DetectionSummary) -> list[dict[str, Any]]:
    """CloudWatch metric series; those sharing one time axis (and floor) are scanned together."""
    rows: list[dict[str, Any]] = []
    groups: dict[tuple, list[tuple[str, str | None, pd.DataFrame]]] = {}
    for s in h.series.itertuples():
        part = h.points[h.points["series_id"] == s.series_id].rename(columns={"ts": "timestamp"})
        part = _per_run(_ended(part, float(s.period_seconds or 0), h.now), s, h.runs)
        if part.empty:
            continue
        dims = json.loads(s.dimensions or "{}")
        dim_text = ",".join(f"{k}={v}" for k, v in sorted(dims.items()))
        subject = f"{s.namespace}/{s.metric_name}{{{dim_text}}}"
        floor = _metric_floor(cfg, s.namespace, s.metric_name)
        key = (floor, "runs" in part, tuple(part["timestamp"].astype("int64")))
        groups.setdefault(key, []).append((subject, s.pipeline, part.reset_index(drop=True)))
    for (floor, per_run, _), members in groups.items():
        ts = members[0][2]["timestamp"]
        step = float(ts.diff().dt.total_seconds().median()) if len(ts) > 1 else 300.0
        # a metric judged per run (``_per_run``) is a run aggregate (``for_runs``, the spans
        # checked on the demo's incidents); other metrics get the CloudWatch defaults
        # (``for_step``, chosen on NAB's labelled series)
        if per_run:
            config = DetectorConfig.for_runs(step, sensitivity=cfg.sensitivity, rel_floor=cfg.metric_rel_floor, abs_floor=floor,
                                             also_periods=(WEEK,), warmup=_week_of(step))
        else:
            extra = {} if cfg.metric_sensitivity is None else {"sensitivity": cfg.metric_sensitivity}
            config = DetectorConfig.for_step(step, rel_floor=cfg.metric_rel_floor, abs_floor=floor, **extra)
        x = np.vstack([m[2]["value"].to_numpy(float) for m in members])
        ex = np.vstack([planned_mask(ts, _windows_for(h.planned, m[1], m[0])) for m in members])
        result = scan_matrix(x, ts, config, excluded=ex)
        for i, (subject, pipeline, part) in enumerate(members):
            scanned = _frame_of(part, result, i)
            rows += _incidents_of(scanned, config, "metric", subject, pipeline, summary)
    return rows


def _run_incidents(h: _History, cfg: AnomalySettings, summary: DetectionSummary) -> list[dict[str, Any]]:
    """Per pipeline: duration and throughput of its succeeded runs per hour, its failure rate and
    its rejected-record rate per day."""
    rows: list[dict[str, Any]] = []
    for pipeline, group in (h.runs.groupby("pipeline") if not h.runs.empty else []):
        finished = group[group["status"].isin(TERMINAL)]
        # duration and throughput (records per run) of the runs that succeeded, per hour: a
        # failed run's missing output (or its cut-short duration) is the failure-rate
        # detector's and the failures list's to report, not a second alert on the same run,
        # and its retry landing beside the next regular run is not twice the throughput
        hourly = finished[finished["status"] == SUCCEEDED].set_index("started_at").resample("1h")
        dur = _ended(hourly["duration_seconds"].mean().dropna(), 3600, h.now)
        thr = _ended(hourly["records_out"].mean().dropna(), 3600, h.now)
        rows += _incidents(_series(dur), DetectorConfig.for_runs(3600, sensitivity=cfg.sensitivity, abs_floor=cfg.duration_floor_seconds, direction="up",
                                                                 also_periods=(WEEK,), warmup=_week_of(3600)),
                           "duration", f"duration:{pipeline}", pipeline, h.planned, summary)
        rows += _incidents(_series(thr), DetectorConfig.for_runs(3600, sensitivity=cfg.sensitivity, abs_floor=cfg.throughput_floor_records,
                                                                 also_periods=(WEEK,), warmup=_week_of(3600)),
                           "throughput", f"throughput:{pipeline}", pipeline, h.planned, summary)
        daily = finished.set_index("started_at").resample("1D")["status"]
        failed = _ended(daily.apply(lambda s: float(s.isin(FAILURES).mean()) if len(s) else np.nan).dropna(), 86400, h.now)
        rows += _incidents(_series(failed), DetectorConfig.for_step(86400, sensitivity=cfg.sensitivity, abs_floor=cfg.failure_rate_floor, direction="up"),
                           "failure_rate", f"failure_rate:{pipeline}", pipeline, h.planned, summary)
        # bad data: the share of records validation rejected, per day
        counts = finished.set_index("started_at")[["records_in", "records_rejected"]].astype(float).resample("1D").sum(min_count=1)
        counts = _ended(counts[counts["records_in"] > 0], 86400, h.now)
        rejected = (counts["records_rejected"].fillna(0.0) / counts["records_in"]).dropna()
        rows += _incidents(_series(rejected), DetectorConfig.for_step(86400, sensitivity=cfg.sensitivity, abs_floor=cfg.rejected_rate_floor, direction="up"),
                           "rejected_rate", f"rejected_rate:{pipeline}", pipeline, h.planned, summary)
    return rows


def _cost_incidents(h: _History, cfg: AnomalySettings, summary: DetectionSummary) -> list[dict[str, Any]]:
    """Daily cost in total and per dimension, each incident with its root cause."""
    rows: list[dict[str, Any]] = []
    cost_cfg = DetectorConfig.for_step(86400, sensitivity=cfg.sensitivity, abs_floor=cfg.cost_floor_usd, rel_floor=cfg.cost_rel_floor, direction="up")
    frames = [f for f in h.cost_by.values() if not f.empty]
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    total = h.cost_total
    cost_series = [("cost:total", None, total.groupby("day")["billed_cost"].sum() if not total.empty else pd.Series(dtype=float))]
    for dim, f in h.cost_by.items():
        if f.empty:
            continue
        for value, g in f.groupby(dim):
            if dim == "pipeline" and value in ("", ALL):
                continue
            cost_series.append((f"cost:{dim}={value}", value if dim == "pipeline" else None, g.groupby("day")["billed_cost"].sum()))
    for subject, pipeline, s in cost_series:
        if s.empty:
            continue
        frame = _series(s.rename(index=lambda d: pd.Timestamp(d, tz="UTC")))
        found = _incidents(frame, cost_cfg, "cost", subject, pipeline, h.planned, summary, bucket=86400)
        for r in found:
            day = r["window_end"].date()
            r["root_cause"] = root_cause(long, day) if not long.empty else []
        rows += found
    return rows


def _last_ended_day(now: datetime) -> date:
    """The last UTC day that has ended at ``now``: yesterday (today has not ended, even at 23:59)."""
    t = pd.Timestamp(now)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return (t.normalize() - pd.Timedelta(days=1)).date()


def _ended(data: Any, seconds: float, now: datetime) -> Any:
    """``data`` (a frame with a ``timestamp`` column, or a series indexed by bucket start)
    without the buckets of ``seconds`` that have not ended at ``now``."""
    if len(data) == 0 or seconds <= 0:
        return data
    t = pd.Timestamp(now)
    cut = (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")) - pd.Timedelta(seconds=seconds)
    starts = pd.to_datetime(data["timestamp"] if isinstance(data, pd.DataFrame) and "timestamp" in data else data.index, utc=True)
    return data[np.asarray(starts <= cut)]


def _series(s: pd.Series) -> pd.DataFrame:
    frame = s.rename("value").rename_axis("timestamp").reset_index()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _windows_for(planned: list, pipeline: str | None, subject: str) -> list[tuple[datetime, datetime]]:
    return [(a, b) for subj, a, b in planned if subj in ("*", pipeline, subject)]


def _metric_floor(cfg: AnomalySettings, namespace: str, name: str) -> float:
    """The absolute floor of a metric series: ``metric_floors`` by ``Namespace/Metric`` or by
    name; the reference pipeline's run and stage durations (seconds) get the floor of the run
    durations read from the runs table, ``duration_floor_seconds``."""
    for key in (f"{namespace}/{name}", name):
        if key in cfg.metric_floors:
            return cfg.metric_floors[key]
    if namespace == REFERENCE_NAMESPACE and name in ("Duration", "StageDuration"):
        return cfg.duration_floor_seconds
    return 0.0


def _per_run(part: pd.DataFrame, s: Any, runs: pd.DataFrame) -> pd.DataFrame:
    """A per-run metric's ``Sum`` series judged per run: each period's sum over the runs of its
    pipeline that ended in it.

    A pipeline like the reference one emits one datapoint per metric at the end of each run, so
    an hourly sum counts runs too: an hourly interval pipeline whose runs drift across the hour
    doubles one hour and leaves the next empty, and two file arrivals in one hour double it,
    with nothing wrong. A series is taken as per-run when it is a ``Sum`` of a watched pipeline
    and at least ``PER_RUN_SHARE`` of its periods had a run of that pipeline ending in them
    (CloudWatch has no datapoint for a period nothing was emitted in); other series are returned
    as they are. ``runs`` (the count) is kept so reports can scale back to the sum; periods
    without a stored run ending in them (not collected yet) are left out."""
    if part.empty or s.stat != "Sum" or not s.pipeline or runs.empty or not s.period_seconds:
        return part
    ended = runs.loc[(runs["pipeline"] == s.pipeline) & runs["ended_at"].notna(), "ended_at"]
    if ended.empty:
        return part
    period = pd.Timedelta(seconds=int(s.period_seconds))
    counts = pd.to_datetime(ended, utc=True).dt.floor(period).value_counts()
    n = part["timestamp"].map(counts).fillna(0).to_numpy(float)
    if np.mean(n > 0) < PER_RUN_SHARE:
        return part
    out = part.loc[n > 0].copy()
    out["runs"] = n[n > 0]
    out["value"] = out["value"] / out["runs"]
    return out


def _frame_of(part: pd.DataFrame, result: ScanResult, i: int) -> pd.DataFrame:
    out = part[["timestamp", "value"]].copy()
    for name in ("expected", "lower", "upper", "score", "ratio", "judged", "cause"):
        out[name] = getattr(result, name)[i]
    if "runs" in part:  # judged per run (``_per_run``): report the period's sum, as stored
        for name in ("value", "expected", "lower", "upper", "judged"):
            out[name] = out[name] * part["runs"].to_numpy()
    out["is_anomaly"] = result.is_anomaly[i].astype(int)
    out["anomalous"] = result.anomalous[i]
    return out


def _incidents(frame: pd.DataFrame, config: DetectorConfig, kind: str, subject: str, pipeline: str | None,
               planned: list, summary: DetectionSummary, *, bucket: int = 86400) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    wins = _windows_for(planned, pipeline, subject)
    scanned = scan_frame(frame[["timestamp", "value"]].sort_values("timestamp").reset_index(drop=True), config, planned=wins)
    return _incidents_of(scanned, config, kind, subject, pipeline, summary, bucket=bucket)


def _incidents_of(scanned: pd.DataFrame, config: DetectorConfig, kind: str, subject: str, pipeline: str | None,
                  summary: DetectionSummary, *, bucket: int = 86400) -> list[dict[str, Any]]:
    summary.series_scanned += 1
    out = []
    for ev in events(scanned, gap=config.suppress, config=config):
        out.append({
            "fingerprint": fingerprint(kind, subject, ev.window_start.to_pydatetime(), bucket_seconds=bucket),
            "kind": kind, "subject": subject, "pipeline": pipeline,
            "window_start": ev.window_start.to_pydatetime(), "window_end": ev.window_end.to_pydatetime(),
            "observed": ev.observed, "expected": ev.expected, "lower": ev.lower, "upper": ev.upper,
            "score": ev.score, "severity": ev.severity, "detector": DETECTOR, "reason": ev.reason,
        })
        summary.anomalies += 1
        summary.by_kind[kind] = summary.by_kind.get(kind, 0) + 1
    return out
