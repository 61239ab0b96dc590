"""Render an example daily digest from a realistic morning, without AWS or a mail server; and
the builders of digest data (rules, runs, anomalies, collector passes) the digest tests reuse.

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
from typing import Any

import pandas as pd

from alerts.digest import run_digest
from alerts.send import build_message
from pipepulse.settings import Settings, load_settings
from pipepulse.vocab import FAILED, SUCCEEDED, TIMED_OUT
from store import alerts as store_alerts
from store.db import connect, upgrade
from store.forecasts import save_snapshot
from store.schema import anomalies, cost_daily, runs
from store.state import finish_collector_run, start_collector_run
from store.writes import upsert

__all__ = ["anomaly_row", "build", "collector_pass", "main", "record_pass", "rules_toml", "run_row"]

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # the 07:30 UTC daily digest

# rule name -> (kind, options): one of each kind a digest shows
RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "failures": ("failed_runs", {}),
    "late": ("freshness", {}),
    "success": ("success_rate", {"threshold": 0.95, "window_hours": 24}),
    "anomalies": ("anomalies", {"min_severity": "medium"}),
    "budget": ("budget", {}),
    "collectors": ("collector_failing", {}),
}


def rules_toml(recipient: str, names: tuple[str, ...] = tuple(RULES)) -> str:
    """``[[alerts.rules]]`` tables for ``names`` (of ``RULES``), each to ``recipient``."""
    out = []
    for name in names:
        kind, options = RULES[name]
        lines = ["[[alerts.rules]]", f'name = "{name}"', f'kind = "{kind}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
        lines.append(f'recipients = ["{recipient}"]')
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def run_row(run_id: str, pipeline: str, *, queued: datetime, started: datetime, ended: datetime,
            status: str = SUCCEEDED, source: str = "reference", trigger: str = "schedule",
            error_type: str | None = None, error_message: str | None = None, **columns: Any) -> dict[str, Any]:
    """A ``runs`` row of one attempt that ended at ``ended`` (scheduled at ``queued`` when the
    trigger is the schedule); ``columns`` adds any other column (records, cost ...)."""
    return {
        "run_id": run_id, "pipeline": pipeline, "source": source, "status": status, "trigger": trigger,
        "attempt": 1, "scheduled_for": queued if trigger == "schedule" else None, "queued_at": queued,
        "started_at": started, "ended_at": ended, "duration_seconds": (ended - started).total_seconds(),
        "error_type": error_type, "error_message": error_message, "updated_at": ended, **columns,
    }


def anomaly_row(fingerprint: str, kind: str, subject: str, *, pipeline: str, severity: str, status: str,
                window: tuple[datetime, datetime], observed: float, expected: float, seen: tuple[datetime, datetime],
                **columns: Any) -> dict[str, Any]:
    """An ``anomalies`` row: the incident's window, what was seen against what was expected, first
    and last seen; ``columns`` adds the rest (band, score, root cause, status details ...)."""
    return {
        "fingerprint": fingerprint, "kind": kind, "subject": subject, "pipeline": pipeline,
        "window_start": window[0], "window_end": window[1], "observed": observed, "expected": expected,
        "severity": severity, "status": status, "version": 1, "first_seen": seen[0], "last_seen": seen[1], **columns,
    }


def record_pass(engine: Any, row: dict[str, Any]) -> None:
    """Store a ``collector_pass`` row as the runner records a pass (start, then finish)."""
    run_id = start_collector_run(engine, row["source"], now=row["started_at"])
    with engine.begin() as conn:
        finish_collector_run(conn, run_id, now=row["ended_at"], status=row["status"], rows_written=row["rows_written"],
                             error=row["error"])


def collector_pass(source: str, started: datetime, status: str, *, rows: int, error: str | None = None,
                   minutes: float = 0) -> dict[str, Any]:
    """A ``collector_runs`` row: one pass of ``source`` that took ``minutes``."""
    return {"source": source, "started_at": started, "ended_at": started + timedelta(minutes=minutes),
            "status": status, "rows_written": rows, "error": error}


ALERTS = """
[alerts]
channel = "smtp"
sender = "pipepulse <pipepulse@example.com>"

""" + rules_toml("data-oncall@example.com", ("failures", "late", "anomalies", "budget", "collectors"))

FAILURES = {
    ("orders", datetime(2026, 11, 20, 3, 0, tzinfo=UTC)): (
        FAILED, "SchemaError",
        "column 'discount_code' missing in 3 of 41 input files under "
        "s3://pipepulse-demo-raw/orders/2026/11/20/03/ (first: part-00017.json)",
    ),
    ("sfn_customer_etl", datetime(2026, 11, 20, 4, 30, tzinfo=UTC)): (
        TIMED_OUT, "States.Timeout", "state 'LoadToWarehouse' exceeded its 900 s timeout (attempt 3 of 3)",
    ),
    ("glue_nightly", datetime(2026, 11, 20, 2, 0, tzinfo=UTC)): (
        FAILED, "GlueException",
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
        status, etype, msg = FAILURES.get((pipeline, slot), (SUCCEEDED, None, None))
        began = slot + timedelta(seconds=rng.randint(5, 90))
        took = minutes * 60 * rng.uniform(0.85, 1.2)
        rows.append(run_row(
            f"{source}:{pipeline}-{slot:%Y%m%dT%H%M}", pipeline, source=source, status=status, trigger=trigger,
            queued=slot, started=began, ended=began + timedelta(seconds=took), error_type=etype, error_message=msg,
            records_in=rng.randint(40_000, 60_000), records_out=rng.randint(39_000, 59_000),
            records_rejected=rng.randint(0, 40), cost_usd=round(took / 3600 * 0.9, 4),
        ))

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
        window = (NOW - timedelta(hours=hours), NOW - timedelta(hours=hours - span))
        return anomaly_row(
            fp, kind, subject, pipeline=pipeline, severity=sev, status=status, window=window, observed=obs, expected=exp,
            seen=(first or window[0], NOW - timedelta(hours=1)), lower=lo, upper=hi, score=0.97,
            status_at=NOW - timedelta(hours=20) if status != "open" else None,
            status_by="ana@example.com" if status != "open" else None,
            root_cause=json.dumps(cause) if cause else None, detector="pipepulse",
        )

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


def build(folder: Path) -> tuple[Settings, Any]:
    """A store and settings for the example morning in ``folder``; returns (settings, engine)."""
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
    for source, minutes, status, error in (
        ("ce", 185, "succeeded", None),
        ("ce", 125, "failed", "ThrottlingException: Rate exceeded (ce:GetCostAndUsage, 5 attempts)"),
        ("ce", 65, "failed", "ThrottlingException: Rate exceeded (ce:GetCostAndUsage, 5 attempts)"),
        ("reference", 10, "succeeded", None),
        ("stepfunctions", 12, "succeeded", None),
    ):
        record_pass(engine, collector_pass(source, NOW - timedelta(minutes=minutes), status,
                                           rows=0 if status == "failed" else 120, error=error, minutes=1))
    with engine.begin() as conn:
        upsert(conn, runs, _runs(rng))
        upsert(conn, cost_daily, _costs(rng))
        upsert(conn, anomalies, _anomalies())
        _forecasts(conn)
        # yesterday's digest already reported the partner_feed throughput drop: it shows as still open
        store_alerts.record_attempt(
            conn, digest_id="example-yesterday", period="daily", channel="smtp", recipients=["data-oncall@example.com"],
            subject="pipepulse daily: 1 anomaly", items=[("anomalies", "data-oncall@example.com", "anomaly:beef0003", "v1|medium")],
            now=NOW - timedelta(days=1),
        )
        store_alerts.finish_digest(conn, "example-yesterday", now=NOW - timedelta(days=1))
    return settings, engine


def main(argv: list[str] | None = None) -> int:
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
