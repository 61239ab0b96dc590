"""Backfill: same seed, same history; the faults show up; the bill matches the ledger's runs."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from clocks import AWS_NOW

from pipeline.backfill import Faults, backfill
from pipeline.focus import COLUMNS
from pipeline.ledger import Ledger
from pipepulse.errors import ConfigError
from pipepulse.settings import load_settings

# The backfill sends its runs' metrics and log events, which AWS checks against its own clock:
# two days that end at midnight before yesterday noon (tests/clocks.py).
END = AWS_NOW.replace(hour=0)
DAYS = [(END - timedelta(days=n)).date() for n in (2, 1)]
PERIODS = sorted({f"{d:%Y-%m}" for d in DAYS})  # two when the days straddle a month end
SFN_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:customer-etl"
# Step Functions transitions the bill charges (the demo passes its executions'): the second day only
TRANSITIONS = {(DAYS[1], "sfn_customer_etl", SFN_ARN): 22}
CONFIG = """
[[pipelines]]
name = "orders"
schedule = "0 * * * *"
[[pipelines]]
name = "clickstream"
interval_minutes = 60
[[pipelines]]
name = "finance_daily"
schedule = "0 6 * * *"
[[pipelines]]
name = "partner_feed"
[[pipelines]]
name = "sfn_customer_etl"
source = "stepfunctions"
schedule = "30 * * * *"

[pipeline]
ledger_path = "{ledger}"
source = "s3://landing/incoming"
output = "s3://lake/curated"
quarantine = "s3://lake/quarantine"
export_bucket = "billing"
sample_every_hours = 24
"""


def _settings(tmp_path, name):
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(ledger=tmp_path / f"{name}.db"))
    return load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path)}, config_path=path)


def _dump(path):
    with Ledger(path) as led:
        return led.runs(), led.steps()


@pytest.mark.aws_clock
def test_backfill_is_deterministic_and_has_its_faults(aws, tmp_path):
    s1 = _settings(tmp_path, "a")
    summary = backfill(s1, days=2, end=END, seed=7, state_transitions=TRANSITIONS)
    runs, steps = _dump(tmp_path / "a.db")

    # same seed, same history (ids and seq included), even into another ledger
    backfill(_settings(tmp_path, "b"), days=2, end=END, seed=7, state_transitions=TRANSITIONS)
    assert _dump(tmp_path / "b.db") == (runs, steps)

    # only reference pipelines, with their triggers
    per = Counter((r["pipeline"], r["trigger"]) for r in runs)
    assert per[("orders", "schedule")] == 48
    assert per[("finance_daily", "schedule")] == 2
    assert 46 <= per[("clickstream", "interval")] <= 48
    assert per[("partner_feed", "event")] >= 4
    assert "sfn_customer_etl" not in {r["pipeline"] for r in runs}
    assert summary.runs == len(runs) == sum(summary.by_status.values())

    faults = Faults(summary.start, 2)
    # the outage: every load in 09:00-13:00 on its day fails after its retries, the run FAILS,
    # and is retried an hour later with trigger "retry"
    o_start, o_end = faults.outage
    # ... and the schema break: finance_daily fails for good that day (and so does its retry)
    broken = [r for r in runs if r["status"] == "FAILED" and r["error_type"] == "SchemaMismatch"]
    assert {(r["pipeline"], r["scheduled_for"][:10], r["attempt"]) for r in broken} == {
        ("finance_daily", faults.schema_break_day.isoformat(), 1),
        ("finance_daily", faults.schema_break_day.isoformat(), 2),
    }
    failed = [r for r in runs if r["status"] == "FAILED" and r not in broken]
    assert failed and all(r["error_type"] == "ServiceUnavailable" for r in failed)
    assert all(o_start.isoformat() <= r["scheduled_for"] < o_end.isoformat() for r in failed)
    retries_of_failed = [r for r in runs if r["trigger"] == "retry"]
    assert len(retries_of_failed) == len([r for r in failed + broken if r["trigger"] != "retry"]) + sum(
        1 for r in runs if r["status"] == "TIMED_OUT" and r["trigger"] != "retry"
    )
    assert {r["attempt"] for r in retries_of_failed} == {2}
    # transient errors absorbed: step attempts > 1 in runs that SUCCEEDED
    ok_ids = {r["run_id"] for r in runs if r["status"] == "SUCCEEDED"}
    absorbed = [s for s in steps if s["attempt"] > 1 and s["run_id"] in ok_ids]
    assert absorbed and summary.retries > 0
    assert {s["status"] for s in steps if s["attempt"] == 1 and s["error_type"] == "SlowDown"} == {
        "FAILED"
    }

    # the bad-data day: orders reject about a quarter of their records that day only
    def reject_share(day):
        rows = [
            r
            for r in runs
            if r["pipeline"] == "orders" and r["scheduled_for"][:10] == day and r["records_in"]
        ]
        return sum(r["records_rejected"] for r in rows) / sum(r["records_in"] for r in rows)

    bad = faults.bad_data_day.isoformat()
    assert 0.2 < reject_share(bad) < 0.3
    assert all(reject_share(d) < 0.01 for d in {r["scheduled_for"][:10] for r in runs} - {bad})
    # slow upstream: clickstream ingest attempts time out on the slow days
    assert any(s["status"] == "TIMED_OUT" and s["stage"] == "ingest" for s in steps)
    # every run has a cost from its usage
    assert all(r["cost_usd"] > 0 for r in runs)
    transformed = {s["run_id"] for s in steps if s["stage"] == "transform"}
    assert all(
        json.loads(r["usage_json"])["glue_dpu_seconds"] >= 60
        for r in runs
        if r["run_id"] in transformed
    )

    # sampled runs read real files: their rejects are in the quarantine with line numbers
    s3 = boto3.client("s3")
    sources = s3.list_objects_v2(Bucket="landing", Prefix="incoming/")["Contents"]
    assert summary.sampled_runs == len(sources) >= 8
    qkeys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="lake", Prefix="quarantine/").get("Contents", [])
    ]
    assert qkeys
    first = json.loads(
        s3.get_object(Bucket="lake", Key=qkeys[0])["Body"].read().decode().splitlines()[0]
    )
    assert first["line"] >= 2 and first["reason"]

    # metrics and logs went out
    # 6 run metrics per run + a StageDuration per stage that ran
    assert summary.metric_points == 6 * summary.runs + len(
        {(s["run_id"], s["stage"]) for s in steps if s["ended_at"]}
    )
    pages = (
        boto3.client("logs")
        .get_paginator("describe_log_streams")
        .paginate(logGroupName="/pipepulse/reference/orders")
    )
    streams = [st for page in pages for st in page["logStreams"]]
    assert len(streams) == per[("orders", "schedule")] + sum(
        1 for r in runs if r["pipeline"] == "orders" and r["trigger"] == "retry"
    )

    _check_focus_export(summary, runs)


def _check_focus_export(summary, runs):
    """The FOCUS export of the same backfill: the whole account, pipeline costs near the ledger's."""
    s3 = boto3.client("s3")
    keys = [f"focus/pipepulse-demo/data/BILLING_PERIOD={p}/pipepulse-demo-00001.csv.gz" for p in PERIODS]
    assert summary.export_keys == keys
    by_key = {
        key: list(csv.DictReader(io.StringIO(
            gzip.decompress(s3.get_object(Bucket="billing", Key=key)["Body"].read()).decode()
        )))
        for key in keys
    }
    rows = [r for part in by_key.values() for r in part]
    assert tuple(rows[0]) == COLUMNS
    assert {r["ChargePeriodStart"][:10] for r in rows} == {d.isoformat() for d in DAYS}
    assert {r["x_ServiceCode"] for r in rows} >= {
        "AmazonEC2",
        "AmazonRDS",
        "AmazonS3",
        "AWSDataTransfer",
        "AWSLambda",
        "AmazonCloudWatch",
        "AWSGlue",
        "AmazonECS",
    }
    assert {r["RegionId"] for r in rows} == {"us-east-1", "eu-west-1"}
    # Step Functions: the transitions given, at the Standard price, exactly; nothing on other days
    sfn = [r for r in rows if r["x_ServiceCode"] == "AWSStepFunctions"]
    assert [(r["ChargePeriodStart"][:10], r["Tags"], r["ResourceId"], float(r["ConsumedQuantity"]), float(r["BilledCost"]))
            for r in sfn] == [(DAYS[1].isoformat(), '{"pipeline": "sfn_customer_etl"}', SFN_ARN, 22.0, 22 * 0.000025)]
    daily = Counter()
    for r in rows:
        daily[r["ChargePeriodStart"][:10]] += float(r["BilledCost"])
    assert all(
        60 < v < 200 for v in daily.values()
    )  # the demo account spends ~$70-90 a day (+ incidents)
    # pipeline-tagged bill vs the ledger's estimate for the same runs: near, not equal
    for pipeline in ("orders", "clickstream"):
        estimate = sum(r["cost_usd"] for r in runs if r["pipeline"] == pipeline)
        billed = sum(
            float(r["BilledCost"])
            for r in rows
            if r["Tags"]
            and json.loads(r["Tags"]) == {"pipeline": pipeline}
            and r["x_UsageType"] != "TimedStorage-ByteHrs"
        )
        assert billed != pytest.approx(estimate, rel=1e-6)
        assert billed == pytest.approx(estimate, rel=0.05)
    for period, key in zip(PERIODS, keys, strict=True):
        manifest = s3.get_object(
            Bucket="billing",
            Key=f"focus/pipepulse-demo/metadata/BILLING_PERIOD={period}/pipepulse-demo-Manifest.json",
        )
        assert json.loads(manifest["Body"].read())["rowCount"] == len(by_key[key])


def test_replaying_a_window_replaces_its_runs(tmp_path):
    start, end = datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)
    with Ledger(tmp_path / "l.db") as led:
        for run_id, pipeline, slot in [
            ("in", "orders", start),
            ("other", "clickstream", start),
            ("before", "orders", start.replace(day=17)),
        ]:
            led.write_run(
                {
                    "run_id": run_id,
                    "pipeline": pipeline,
                    "status": "QUEUED",
                    "trigger": "schedule",
                    "attempt": 1,
                    "scheduled_for": slot,
                }
            )
            led.write_step({"run_id": run_id, "stage": "ingest", "attempt": 1, "status": "RUNNING"})
        assert led.forget(pipelines=["orders"], start=start, end=end) == 1
        assert [r["run_id"] for r in led.runs()] == ["other", "before"]
        assert [s["run_id"] for s in led.steps()] == ["other", "before"]
        # the forgotten run can be written again from scratch, with a higher seq than anything before
        top = led.max_seq()
        assert (
            led.write_run(
                {
                    "run_id": "in",
                    "pipeline": "orders",
                    "status": "QUEUED",
                    "trigger": "schedule",
                    "attempt": 1,
                }
            )
            == top + 1
        )


def test_bad_pipeline_config_names_the_file_and_key(tmp_path):
    from pipeline.config import pipeline_section

    path = tmp_path / "bad.toml"
    path.write_text('[pipeline]\nmax_attempts = "three"\n')
    with pytest.raises(
        ConfigError, match=r"bad.toml: \[pipeline\] max_attempts: expected int, got 'three'"
    ):
        pipeline_section(load_settings({}, config_path=path))
    path.write_text('[pipeline]\nsourc = "s3://x"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:2: \[pipeline\] sourc: unknown key; did you mean source\?"):
        pipeline_section(load_settings({}, config_path=path))


@pytest.mark.parametrize("days", [2, 4, 21, 60, 61, 90, 200, 201])
def test_the_outage_is_recent_enough_for_log_lines_in_a_long_window(days):
    start = datetime(2026, 9, 6, tzinfo=UTC)
    f = Faults(start, days)
    end = (start + timedelta(days=days)).date()
    if 60 < days <= 200:
        # 9 days before the end: its failed runs are inside CloudWatch Logs' 14 days
        assert (end - f.outage_day).days == 9
        assert f.runaway_days[1] < f.outage_day < f.schema_break_day
    else:
        assert f.outage_day == f.day(0.55)
    assert f.outage == (datetime.combine(f.outage_day, datetime.min.time(), UTC) + timedelta(hours=9),
                        datetime.combine(f.outage_day, datetime.min.time(), UTC) + timedelta(hours=13))


@pytest.mark.aws_clock
def test_a_backfill_ending_now_sends_only_what_cloudwatch_accepts(aws, tmp_path):
    """As the demo ends its history: at the last whole hour, with more than 14 days behind it.
    The local AWS refuses a datum older than 14 days as AWS does (the whole call fails)."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path)}, config_path=None)  # orders, hourly
    summary = backfill(settings, days=15, end=end, seed=7)
    runs, steps = _dump(tmp_path / "ledger.db")
    assert summary.runs == len(runs) >= 360
    # every datum was either sent (and accepted) or counted as too old; the first day's were old
    datums = 6 * summary.runs + len({(s["run_id"], s["stage"]) for s in steps if s["ended_at"]})
    assert summary.metric_points + summary.metric_too_old == datums
    assert summary.metric_too_old >= 6 * 24 and summary.log_events_too_old >= 24
    # CloudWatch Logs kept what was sent: one stream per run whose events went out
    pages = boto3.client("logs").get_paginator("describe_log_streams").paginate(logGroupName="/pipepulse/reference/orders")
    streams = [st["logStreamName"] for page in pages for st in page["logStreams"]]
    assert 0 < len(streams) <= summary.runs - 24
