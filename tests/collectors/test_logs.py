from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW

from collectors.runner import collect
from store.schema import collector_runs, run_logs

# PutLogEvents keeps events of the last 14 days only: the runs start 35 hours before the clock
pytestmark = pytest.mark.aws_clock
T0 = AWS_NOW - timedelta(hours=35)
STREAM = f"{T0:%Y/%m/%d}/r2"


def _ledger_run(ledger, rid, status, **kw):
    ledger.run(run_id=rid, pipeline="orders", status=status, trigger="schedule", attempt=1, started_at=T0.isoformat(),
               ended_at=(T0 + timedelta(minutes=10)).isoformat(), correlation_id=f"c-{rid}", **kw)


def _event(minute, cid, level, message, stage="load"):
    return {"timestamp": int((T0 + timedelta(minutes=minute)).timestamp() * 1000),
            "message": json.dumps({"correlation_id": cid, "run_id": cid[2:], "stage": stage, "level": level, "message": message})}


def test_error_and_warning_events_of_failed_runs(aws, make_settings, engine, ledger, now):
    _ledger_run(ledger, "r1", "SUCCEEDED")
    _ledger_run(ledger, "r2", "FAILED", error_type="ValueError", error_message="bad row")
    logs = boto3.client("logs")
    group = "/pipepulse/reference/orders"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=STREAM)
    logs.put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=[
        _event(1, "c-r2", "INFO", "started"),
        _event(2, "c-r2", "WARNING", "3 rows rejected", stage="validate"),
        _event(3, "c-r22", "ERROR", "another run whose id contains c-r2"),
        _event(4, "c-r2", "ERROR", "bad row"),
        _event(5, "c-r1", "ERROR", "not this run"),
    ])
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n')

    first = {p.source: p for p in collect(settings, engine, now=now)}
    assert first["logs"].status == "succeeded", first["logs"].error
    # only the failed run is looked up, after one look at its group
    assert first["logs"].calls == {"logs:DescribeLogGroups": 1, "logs:FilterLogEvents": 1}
    with engine.connect() as conn:
        got = conn.execute(sa.select(run_logs.c.run_id, run_logs.c.level, run_logs.c.stage, run_logs.c.message, run_logs.c.ts,
                                     run_logs.c.log_stream).order_by(run_logs.c.ts)).all()
    assert got == [
        ("reference:r2", "WARN", "validate", "3 rows rejected", T0 + timedelta(minutes=2), STREAM),
        ("reference:r2", "ERROR", "load", "bad row", T0 + timedelta(minutes=4), STREAM),
    ]

    second = {p.source: p for p in collect(settings, engine, now=now + timedelta(minutes=5))}
    assert (second["logs"].rows_written, second["logs"].api_calls) == (0, 0)


def _details(engine):
    with engine.connect() as conn:
        return [json.loads(d) for d in conn.execute(
            sa.select(collector_runs.c.details).where(collector_runs.c.source == "logs").order_by(collector_runs.c.collector_run_id)
        ).scalars()]


def test_missing_log_group_is_not_an_error(aws, make_settings, engine, ledger, now):
    _ledger_run(ledger, "r9", "FAILED")
    boto3.client("logs").create_log_group(logGroupName="/pipepulse/reference/orders2")  # same prefix, not it
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n')
    results = {p.source: p for p in collect(settings, engine, now=now)}
    assert (results["logs"].status, results["logs"].rows_written) == ("succeeded", 0)
    assert results["logs"].calls == {"logs:DescribeLogGroups": 1}  # nothing to filter in a missing group
    [details] = _details(engine)
    assert (details["missing_groups"], details["lookback_days"]) == (1, 14)
    assert details["log_groups"] == {"reference:orders": {"group": "/pipepulse/reference/orders", "retention_days": None, "exists": False}}


def test_the_pass_records_each_groups_retention_and_its_lookback(aws, make_settings, engine, ledger, now):
    _ledger_run(ledger, "r1", "FAILED")
    _ledger_run(ledger, "r2", "TIMED_OUT")
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/pipepulse/reference/orders")
    logs.put_retention_policy(logGroupName="/pipepulse/reference/orders", retentionInDays=7)
    settings = make_settings('[collectors]\nsources = ["reference", "logs"]\n[collectors.logs]\nlookback_days = 30\n')
    results = {p.source: p for p in collect(settings, engine, now=now)}
    assert results["logs"].status == "succeeded", results["logs"].error
    # one DescribeLogGroups for the two runs of one group
    assert results["logs"].calls == {"logs:DescribeLogGroups": 1, "logs:FilterLogEvents": 2}
    [details] = _details(engine)
    assert (details["runs"], details["lookback_days"]) == (2, 30)
    assert details["log_groups"] == {"reference:orders": {"group": "/pipepulse/reference/orders", "retention_days": 7, "exists": True}}
