"""Render an example daily digest from a realistic morning, without AWS or a mail server.

    python -m devkit.digest_example [--out artifacts/digest-example.html]

Builds a throw-away SQLite store with the demo's six pipelines (``examples/demo.toml``): two weeks
of runs with three overnight failures, a finance run that has not happened, a partner feed
that is late, cost and duration anomalies (one already reported yesterday, one acknowledged),
three weeks of spend by service with a jump in S3 requests, forecasts over budget and a Cost
Explorer collector being throttled. Then runs ``run_digest(..., dry_run=True, out=...)``: the
same code path as ``pipepulse digest --dry-run --out``. Also writes the plain-text part and the
whole MIME message (``.txt``, ``.eml``) beside the HTML.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # the 07:30 UTC daily digest

ALERTS = """
[alerts]
channel = "smtp"
sender = "pipepulse <pipepulse@example.com>"

[[alerts.rules]]
name = "failures"
kind = "failed_runs"
recipients = ["data-oncall@example.com"]

[[alerts.rules]]
name = "late"
kind = "freshness"
recipients = ["data-oncall@example.com"]

[[alerts.rules]]
name = "anomalies"
kind = "anomalies"
min_severity = "medium"
recipients = ["data-oncall@example.com"]

[[alerts.rules]]
name = "budget"
kind = "budget"
recipients = ["data-oncall@example.com"]

[[alerts.rules]]
name = "collectors"
kind = "collector_failing"
recipients = ["data-oncall@example.com"]
"""

FAILURES = {
    ("orders", datetime(2026, 11, 20, 3, 0, tzinfo=UTC)): (
        "FAILED", "SchemaError",
        "column 'discount_code' missing in 3 of 41 input files under "
        "s3://pipepulse-demo-raw/orders/2026/11/20/03/ (first: part-00017.json)",
    ),
    ("sfn_customer_etl", datetime(2026, 11, 20, 4, 30, tzinfo=UTC)): (
        "TIMED_OUT", "States.Timeout", "state 'LoadToWarehouse' exceeded its 900 s timeout (attempt 3 of 3)",
    ),
    ("glue_nightly", datetime(2026, 11, 20, 2, 0, tzinfo=UTC)): (
        "FAILED", "GlueException",
        "Command failed with exit code 1: java.lang.OutOfMemoryError: Java heap space "
        "(executor 7 on 10 G.1X workers while compacting s3://pipepulse-demo-lake/events/)",
    ),
}


def _runs(rng: random.Random) -> list[dict]:
    rows = []
    start = (NOW - timedelta(days=14)).replace(minute=0)

    def add(pipeline: str, source: str, slot: datetime, minutes: float, *, trigger: str = "schedule") -> None:
        if slot > NOW - timedelta(minutes=minutes + 1):
            return
        status, etype, msg = FAILURES.get((pipeline, slot), ("SUCCEEDED", None, None))
        began = slot + timedelta(seconds=rng.randint(5, 90))
        took = minutes * 60 * rng.uniform(0.85, 1.2)
        rows.append({
            "run_id": f"{source}:{pipeline}-{slot:%Y%m%dT%H%M}", "pipeline": pipeline, "source": source,
            "status": status, "trigger": trigger, "attempt": 1, "scheduled_for": slot if trigger == "schedule" else None,
            "queued_at": slot, "started_at": began, "ended_at": began + timedelta(seconds=took),
            "duration_seconds": took, "records_in": rng.randint(40_000, 60_000), "records_out": rng.randint(39_000, 59_000),
            "records_rejected": rng.randint(0, 40), "error_type": etype, "error_message": msg,
            "cost_usd": round(took / 3600 * 0.9, 4), "updated_at": began + timedelta(seconds=took),
        })

    t = start
    while t < NOW:
        add("orders", "reference", t, 9)
        add("sfn_customer_etl", "stepfunctions", t + timedelta(minutes=30), 14)
        add("clickstream", "reference", t + timedelta(minutes=7), 11, trigger="interval")
        if t.hour == 6:
            # finance_daily's 06:00 run did not happen today
            if t.date() != NOW.date():
                add("finance_daily", "reference", t, 22)
        if t.hour == 2:
            add("glue_nightly", "glue", t, 48)
        t += timedelta(hours=1)
    # partner files arrive when the partner sends them: the last one 27 hours ago (SLA 24 h)
    for days_ago, hour in ((13, 9), (11, 14), (9, 10), (7, 16), (5, 11), (3, 15), (1, 4)):
        slot = (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=12)
        add("partner_feed", "reference", slot, 6, trigger="event")
    return rows


def _costs(rng: random.Random) -> list[dict]:
    services = {
        ("AWS Glue", "orders"): 21.0, ("AWS Glue", "glue_nightly"): 18.0, ("Amazon S3", "orders"): 12.5,
        ("Amazon S3", "clickstream"): 6.0, ("AWS Lambda", "clickstream"): 9.0, ("AWS Step Functions", "sfn_customer_etl"): 4.2,
        ("Amazon CloudWatch", ""): 5.1, ("Amazon RDS", ""): 11.8,
    }
    rows = []
    day = date(2026, 10, 28)
    while day < NOW.date():
        weekday = 0.82 if day.weekday() >= 5 else 1.0
        for (service, pipeline), base in services.items():
            cost = base * weekday * rng.uniform(0.93, 1.07)
            if service == "Amazon S3" and pipeline == "orders" and day >= date(2026, 11, 17):
                cost += 21.0 + (day - date(2026, 11, 17)).days * 6.0  # the request-tier jump
            rows.append({
                "source": "focus", "day": day, "provider": "AWS", "account": "123456789012", "service": service,
                "region": "us-east-1", "usage_type": "", "pipeline": pipeline, "billed_cost": round(cost, 4),
                "effective_cost": round(cost, 4), "currency": "USD", "updated_at": NOW,
            })
        day += timedelta(days=1)
    return rows


def _anomalies() -> list[dict]:
    def a(fp, kind, subject, pipeline, sev, status, obs, exp, lo, hi, hours, *, cause=None, first=None, span=1):
        return {
            "fingerprint": fp, "kind": kind, "subject": subject, "pipeline": pipeline,
            "window_start": NOW - timedelta(hours=hours), "window_end": NOW - timedelta(hours=hours - span),
            "observed": obs, "expected": exp, "lower": lo, "upper": hi, "score": 0.97, "severity": sev,
            "status": status, "status_at": NOW - timedelta(hours=20) if status != "open" else None,
            "status_by": "ana@example.com" if status != "open" else None,
            "root_cause": json.dumps(cause) if cause else None, "detector": "pipepulse", "version": 1,
            "first_seen": first or NOW - timedelta(hours=hours), "last_seen": NOW - timedelta(hours=1),
        }

    return [
        # yesterday's cost (the whole UTC day of 19 Nov)
        a("c0ffee01", "cost", "Daily cost of Amazon S3 for orders", "orders", "high", "open", 45.80, 12.60, 10.90, 14.40, 31.5,
          span=24,
          cause=[{"dimension": "usage_type", "value": "USE1-Requests-Tier1", "impact": 31.4, "observed": 34.5, "expected": 3.1},
                 {"dimension": "usage_type", "value": "USE1-TimedStorage-ByteHrs", "impact": 1.8, "observed": 11.3,
                  "expected": 9.5}]),
        a("d00d0002", "duration", "clickstream run duration", "clickstream", "medium", "open", 1420.0, 610.0, 480.0, 760.0, 5),
        a("beef0003", "throughput", "partner_feed records per run", "partner_feed", "medium", "open",
          12_400.0, 48_000.0, 39_000.0, 56_000.0, 40, first=NOW - timedelta(days=1, hours=16)),
        a("acce0004", "failure_rate", "orders failure rate", "orders", "high", "acknowledged", 0.12, 0.01, 0.0, 0.04, 30),
    ]


def _forecasts(conn) -> None:
    from store.forecasts import save_snapshot

    days = pd.date_range("2026-11-20", "2026-11-30", freq="D")
    for subject, per_day, mean, lo, hi, budget in (
        ("total", 104.0, 2_734.0, 2_652.0, 2_841.0, 2_600.0),
        ("pipeline:orders", 12.0, 301.0, 284.0, 322.0, 260.0),
        ("pipeline:clickstream", 6.0, 171.0, 160.0, 183.0, 200.0),
    ):
        pts = pd.DataFrame({"day": days.date, "mean": per_day, "lower": per_day * 0.9, "upper": per_day * 1.12})
        save_snapshot(
            conn, created_at=NOW - timedelta(hours=1), method="pipepulse", subject=subject, level=0.8, points=pts,
            month_end_mean=mean, month_end_lower=lo, month_end_upper=hi, budget=budget,
            budget_cross_day=date(2026, 11, 28) if mean > budget else None, mape=0.061, mase=0.72,
        )


def build(folder: Path) -> tuple:
    """A store and settings for the example morning in ``folder``; returns (settings, engine)."""
    from alerts.digest import run_digest  # noqa: F401  (fail early if the package is broken)
    from pipepulse.settings import load_settings
    from store import alerts as store_alerts
    from store.db import connect, upgrade
    from store.schema import anomalies, collector_runs, cost_daily, runs

    config = folder / "pipepulse.toml"
    demo = (ROOT / "examples" / "demo.toml").read_text(encoding="utf-8")
    # the demo's pipelines and budgets, with this example's own rules instead of the demo's
    demo = demo.split("\n[alerts]", 1)[0]
    config.write_text(demo + ALERTS, encoding="utf-8")
    url = f"sqlite:///{folder / 'example.db'}"
    settings = load_settings({"PIPEPULSE_DATABASE_URL": url, "PIPEPULSE_DASHBOARD_URL": "https://pipepulse.example.com"},
                             config_path=config)
    engine = connect(url)
    upgrade(engine)
    rng = random.Random(20261120)
    with engine.begin() as conn:
        conn.execute(runs.insert(), _runs(rng))
        conn.execute(cost_daily.insert(), _costs(rng))
        conn.execute(anomalies.insert(), _anomalies())
        _forecasts(conn)
        conn.execute(collector_runs.insert(), [
            {"source": src, "started_at": NOW - timedelta(minutes=m), "ended_at": NOW - timedelta(minutes=m - 1),
             "status": st, "rows_written": 0 if st == "failed" else 120, "error": err}
            for src, m, st, err in (
                ("ce", 185, "succeeded", None),
                ("ce", 125, "failed", "ThrottlingException: Rate exceeded (ce:GetCostAndUsage, 5 attempts)"),
                ("ce", 65, "failed", "ThrottlingException: Rate exceeded (ce:GetCostAndUsage, 5 attempts)"),
                ("reference", 10, "succeeded", None),
                ("stepfunctions", 12, "succeeded", None),
            )
        ])
        # yesterday's digest already reported the partner_feed throughput drop: it shows as still open
        store_alerts.record_attempt(
            conn, digest_id="example-yesterday", period="daily", channel="smtp", recipients=["data-oncall@example.com"],
            subject="pipepulse daily: 1 anomaly", items=[("anomalies", "data-oncall@example.com", "anomaly:beef0003", "v1|medium")],
            now=NOW - timedelta(days=1),
        )
        store_alerts.finish_digest(conn, "example-yesterday", now=NOW - timedelta(days=1))
    return settings, engine


def main(argv: list[str] | None = None) -> int:
    from alerts.digest import run_digest
    from alerts.send import build_message

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "digest-example.html"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        settings, engine = build(Path(tmp))
        result = run_digest(settings, engine, period="daily", now=NOW, dry_run=True, out=out)
        engine.dispose()
    [digest] = result.digests
    assert digest.rendered is not None
    out.with_suffix(".txt").write_text(digest.rendered.text, encoding="utf-8")
    msg = build_message(digest.rendered, sender="pipepulse <pipepulse@example.com>", recipients=digest.recipients, now=NOW)
    out.with_suffix(".eml").write_bytes(msg.as_bytes())
    print(f"{digest.subject}\nwrote {out} (+ .txt, .eml)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
