"""A small but realistic pipepulse database for the dashboard tests, written with the store's own
upsert (and ``store.rollups.refresh_run_daily``, ``store.places.refresh_places``), on SQLite or PostgreSQL.

Thirty days of hourly and daily runs of the demo's six pipelines (``examples/demo.toml``) ending
at ``end``: failures with errors (one whose error is ``<script>alert(1)</script>``), timeouts,
step retries with queue time, log lines with correlation ids; sixty days of FOCUS cost rows over
several services, regions, usage types, two accounts and the pipeline tags; a forecast snapshot
with its backtest figures; anomalies in every status; collector passes (one failed). Seeded, so
the same ``end`` gives the same rows.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from store.places import refresh_places
from store.rollups import refresh_run_daily
from store.schema import (
    anomalies,
    collector_runs,
    cost_daily,
    forecast_points,
    forecast_snapshots,
    pipelines,
    run_logs,
    run_steps,
    runs,
)
from store.writes import upsert

SCRIPT_ERROR = "<script>alert(1)</script>"
STAGES = ("ingest", "validate", "transform", "load")
PIPELINES = {
    # name: (source, cadence hours, minute, base duration s, records per run)
    "orders": ("reference", 1, 0, 240, 12_000),
    "clickstream": ("reference", 1, 10, 420, 90_000),
    "finance_daily": ("reference", 24, 6 * 60, 900, 250_000),
    "partner_feed": ("reference", 8, 25, 300, 5_000),
    "sfn_customer_etl": ("stepfunctions", 1, 30, 180, 8_000),
    "glue_nightly": ("glue", 24, 2 * 60, 1800, 1_500_000),
}
SERVICES = {
    "Amazon Simple Storage Service": ("TimedStorage-ByteHrs", "Requests-Tier1"),
    "AWS Lambda": ("Lambda-GB-Second", "Request"),
    "AWS Glue": ("GlueETL-DPU-Hour", "Crawler-DPU-Hour"),
    "AWS Step Functions": ("StateTransition", "ExpressRequest"),
    "AmazonCloudWatch": ("MetricMonitorUsage", "DataProcessing-Bytes"),
    "Amazon Elastic Container Service": ("Fargate-vCPU-Hours", "Fargate-GB-Hours"),
}
REGIONS = ("us-east-1", "eu-west-1")
ACCOUNTS = ("123456789012", "210987654321")


@dataclass
class Dataset:
    end: datetime
    run_ids: dict[str, str] = field(default_factory=dict)  # label -> run id
    counts: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # label -> fingerprint


def build(engine, *, end: datetime, days: int = 30, seed: int = 7) -> Dataset:
    """Write the dataset ending at ``end`` (floored to the hour) and return what tests need."""
    rnd = random.Random(seed)
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    out = Dataset(end=end)
    pipe_rows, run_rows, step_rows, log_rows = [], [], [], []
    for name, (source, every, minute, base, recs) in PIPELINES.items():
        pipe_rows.append({"name": name, "source": source, "account": ACCOUNTS[0], "region": "us-east-1"})
        t = start.replace(hour=0) + timedelta(minutes=minute)
        n = 0
        while t < end:
            if t >= start:
                n += 1
                run_rows.append(_run(rnd, name, source, t, base, recs, n, end, step_rows, log_rows, out))
            t += timedelta(hours=every)
    with engine.begin() as conn:
        upsert(conn, pipelines, pipe_rows, now=end)
        upsert(conn, runs, run_rows, now=end)
        upsert(conn, run_steps, step_rows, now=end)
        upsert(conn, run_logs, log_rows)
        days_set = {r["started_at"].date() for r in run_rows}
        refresh_run_daily(conn, days=days_set, now=end)
        cost_rows = _costs(rnd, end.date(), 60)
        upsert(conn, cost_daily, cost_rows, now=end)
        # as store.costs.replace_cost_rows does for the collectors: the account and region lists read these
        refresh_places(conn, "cost", min(r["day"] for r in cost_rows), max(r["day"] for r in cost_rows) + timedelta(days=1))
        _forecast(conn, end)
        upsert(conn, anomalies, _anomalies(end, out))
        upsert(conn, collector_runs, _collector_runs(end))
    out.counts = {"runs": len(run_rows), "steps": len(step_rows), "logs": len(log_rows)}
    return out


def _run(rnd, name, source, t, base, recs, n, end, step_rows, log_rows, out: Dataset) -> dict:
    run_id = f"{source}:{name}-{t:%Y%m%dT%H%M}"
    corr = f"c-{name}-{t:%Y%m%d%H%M}"
    # the newest run of orders is still running; some runs fail, time out or retry
    roll = rnd.random()
    status, error_type, error = "SUCCEEDED", None, None
    retries = 0
    if name == "orders" and t + timedelta(hours=1) >= end:
        status = "RUNNING"
    elif name == "partner_feed" and "script" not in out.run_ids and end - t < timedelta(days=2):
        status, error_type, error = "FAILED", "ValidationError", SCRIPT_ERROR
        out.run_ids["script"] = run_id
    elif roll < 0.04:
        status, error_type, error = "FAILED", "UpstreamError", f"source bucket s3://{name}-raw returned 503 after 3 attempts"
    elif roll < 0.05:
        status, error_type, error = "TIMED_OUT", "Timeout", "load exceeded its 3600 s timeout"
    elif roll < 0.15:
        retries = 1
    # a slow week on clickstream, for the duration trend
    slow = 2.5 if name == "clickstream" and (end - t) < timedelta(days=4) else 1.0
    duration = base * slow * rnd.uniform(0.8, 1.25)
    queued = t
    started = t + timedelta(seconds=rnd.randint(5, 90))
    ended = None if status == "RUNNING" else started + timedelta(seconds=duration)
    records = int(recs * rnd.uniform(0.85, 1.15))
    rejected = int(records * rnd.uniform(0, 0.01))
    out.run_ids.setdefault("first_" + name, run_id)
    if retries:
        out.run_ids["retried"] = run_id  # the newest one wins
    if status == "FAILED" and error_type == "UpstreamError":
        out.run_ids["failed"] = run_id
    # stages: each takes a share of the duration; a retried run has two attempts of "transform"
    cursor = started
    share = duration / len(STAGES)
    for i, stage in enumerate(STAGES):
        attempts = 2 if retries and stage == "transform" else 1
        for attempt in range(1, attempts + 1):
            s_status = "SUCCEEDED"
            s_err_t = s_err = None
            if attempt < attempts:
                s_status, s_err_t, s_err = "FAILED", "ThrottlingException", "Rate exceeded"
            if status in ("FAILED", "TIMED_OUT") and i == len(STAGES) - 1:
                s_status, s_err_t, s_err = status, error_type, error
            if status == "RUNNING" and i == len(STAGES) - 1:
                s_status = "RUNNING"
            q = cursor
            s = cursor + timedelta(seconds=3 if attempt == 1 else 20)
            e = None if s_status == "RUNNING" else s + timedelta(seconds=share / attempts)
            step_rows.append(
                {
                    "run_id": run_id, "stage": stage, "attempt": attempt, "status": s_status,
                    "queued_at": q, "started_at": s, "ended_at": e,
                    "duration_seconds": (e - s).total_seconds() if e else None,
                    "records_in": records, "records_out": records - (rejected if stage == "validate" else 0),
                    "records_rejected": rejected if stage == "validate" else 0,
                    "error_type": s_err_t, "error_message": s_err,
                }
            )
            cursor = e or s
    if status != "SUCCEEDED" or retries:
        for j, (level, msg) in enumerate(
            [("INFO", f"run {run_id} started"), ("WARNING", "transform attempt 1 throttled, retrying" if retries else "slow upstream"),
             ("ERROR" if error else "INFO", error or "run finished")]
        ):
            log_rows.append(
                {
                    "log_id": f"/pipepulse/reference/{name}:{run_id}:{j}", "run_id": run_id, "correlation_id": corr,
                    "ts": started + timedelta(seconds=j * 10), "level": level, "stage": STAGES[min(j + 1, 3)], "message": msg,
                    "log_group": f"/pipepulse/reference/{name}", "log_stream": f"{t:%Y/%m/%d}/{run_id}",
                }
            )
    cost = round(duration / 3600 * 0.04048 * 2 + records * 2e-8, 6)
    return {
        "run_id": run_id, "pipeline": name, "source": source, "status": status,
        "trigger": "schedule" if name != "partner_feed" else "event", "attempt": 1,
        "scheduled_for": t if name != "partner_feed" else None, "queued_at": queued, "started_at": started,
        "ended_at": ended, "duration_seconds": (ended - started).total_seconds() if ended else None,
        "records_in": records, # 0, not NULL, for unfinished/failed runs: store.rollups' PostgreSQL path cannot yet store a
        # day whose records_out are all NULL (the int column comes back as float)
        "records_out": 0 if status != "SUCCEEDED" else records - rejected,
        "records_rejected": rejected, "bytes_in": records * 180, "retries": retries,
        "error_type": error_type, "error_message": error, "correlation_id": corr, "cost_usd": cost,
        "account": ACCOUNTS[0], "region": "us-east-1",
    }


def _costs(rnd, last: date, days: int) -> list[dict]:
    rows = []
    tags = ["", *PIPELINES]
    for d in range(days):
        day = last - timedelta(days=d)
        weekday = 0.8 if day.weekday() >= 5 else 1.0
        for si, (service, usages) in enumerate(SERVICES.items()):
            for region in REGIONS:
                for usage in usages:
                    for acc_i, account in enumerate(ACCOUNTS):
                        tag = tags[(si + acc_i + len(usage)) % len(tags)]
                        base = (si + 1) * 1.0 * (1.0 if region == "us-east-1" else 0.4) * (1.0 if acc_i == 0 else 0.5)
                        spike = 3.0 if service == "AWS Glue" and d == 2 else 1.0  # the cost anomaly
                        amount = round(base * weekday * spike * rnd.uniform(0.9, 1.1), 4)
                        rows.append(
                            {
                                "source": "focus", "day": day, "provider": "AWS", "account": account, "service": service,
                                "region": region, "usage_type": f"{region[:2].upper()}-{usage}", "pipeline": tag,
                                "billed_cost": amount, "effective_cost": round(amount * 0.93, 4), "usage_quantity": amount * 10,
                                "currency": "USD",
                            }
                        )
    return rows


def _forecast(conn, end: datetime) -> None:
    first = end.date().replace(day=1)
    month_end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    created = end - timedelta(hours=1)
    upsert(
        conn,
        forecast_snapshots,
        [
            {
                "snapshot_id": 1, "created_at": created, "method": "pipepulse", "subject": "total", "level": 0.8,
                "train_start": end.date() - timedelta(days=59), "train_end": end.date() - timedelta(days=1),
                "mape": 0.062, "mase": 0.71, "bias": -0.01, "coverage": 0.79, "backtest_points": 120,
                "month_end_mean": 3050.0, "month_end_lower": 2890.0, "month_end_upper": 3240.0, "budget": 2600.0,
                "budget_cross_day": end.date(), "model": "robust-ets", "backtest_mae": 4.2, "mae_last_value": 6.0,
                "mae_seasonal_naive": 5.25,
            },
            {
                "snapshot_id": 2, "created_at": created, "method": "pipepulse", "subject": "pipeline:orders", "level": 0.8,
                "train_start": end.date() - timedelta(days=59), "train_end": end.date() - timedelta(days=1),
                "coverage": 0.75, "backtest_points": 120, "model": "last-value", "backtest_mae": 1.5,
                "mae_last_value": 1.5, "mae_seasonal_naive": 2.0,
            },
        ],
    )
    pts = []
    day = end.date()
    while day <= max(month_end, end.date() + timedelta(days=14)):
        pts.append({"snapshot_id": 1, "day": day, "mean": 101.0, "lower": 92.0, "upper": 111.0})
        day += timedelta(days=1)
    upsert(conn, forecast_points, pts)


def _anomalies(end: datetime, out: Dataset) -> list[dict]:
    day = end.replace(hour=0)
    rows = [
        ("dur", "duration", "clickstream duration p95", "clickstream", day - timedelta(days=2), 1050.0, 420.0, "high", "open", None, None),
        ("thr", "throughput", "orders records out", "orders", day - timedelta(days=5), 120000.0, 288000.0, "medium", "open", None, None),
        ("cost", "cost", "daily spend AWS Glue", None, day - timedelta(days=2), 52.1, 18.0, "critical", "open", None,
         json.dumps([{"dimension": "service", "value": "AWS Glue", "impact": 34.1}, {"dimension": "region", "value": "us-east-1", "impact": 24.0}])),
        ("fail", "failure_rate", "partner_feed failure rate", "partner_feed", day - timedelta(days=9), 0.33, 0.02, "high", "acknowledged", "looking into it", None),
        ("snz", "metric", "Pipepulse/Reference RecordsRejected orders", "orders", day - timedelta(days=12), 900.0, 100.0, "low", "snoozed", "known partner issue", day + timedelta(days=3)),
        ("res", "duration", "finance_daily duration p95", "finance_daily", day - timedelta(days=20), 2400.0, 900.0, "medium", "resolved", "fixed the index", None),
    ]
    out_rows = []
    for label, kind, subject, pipe, ws, obs, exp, sev, status, note, extra in rows:
        fp = f"fp-{label}-{kind}"
        out.fingerprints[label] = fp
        snoozed = extra if status == "snoozed" else None
        root = extra if kind == "cost" else None
        out_rows.append(
            {
                "fingerprint": fp, "kind": kind, "subject": subject, "pipeline": pipe, "window_start": ws,
                "window_end": ws + timedelta(days=1), "observed": obs, "expected": exp, "lower": exp * 0.8, "upper": exp * 1.2,
                "score": 0.97, "severity": sev, "status": status, "status_note": note,
                "status_by": "alice" if status != "open" else None, "status_at": ws + timedelta(days=1) if status != "open" else None,
                "snoozed_until": snoozed, "root_cause": root, "detector": "pipepulse", "version": 1,
                "first_seen": ws + timedelta(hours=1), "last_seen": ws + timedelta(hours=5),
            }
        )
    return out_rows


def _collector_runs(end: datetime) -> list[dict]:
    rows = []
    cid = 0
    for hours_ago in range(72, 0, -1):
        t = end - timedelta(hours=hours_ago)
        for source, calls, price in (("reference", 0, 0.0), ("stepfunctions", 4, 0.0), ("glue", 2, 0.0), ("cloudwatch", 3, 0.03), ("logs", 2, 0.0), ("ce", 3, 0.03)):
            if source == "ce" and t.hour % 6:
                continue
            cid += 1
            failed = source == "glue" and hours_ago == 1
            rows.append(
                {
                    "collector_run_id": cid, "source": source, "started_at": t, "ended_at": t + timedelta(seconds=4),
                    "window_start": t - timedelta(hours=1), "window_end": t, "status": "failed" if failed else "succeeded",
                    "rows_written": 0 if failed else 40 + hours_ago % 7, "api_calls": calls, "api_cost_usd": price,
                    "error": "AccessDeniedException: grant glue:GetJobRuns to the collector role" if failed else None,
                    "details": json.dumps({"calls": {"op": calls}}),
                }
            )
    return rows
