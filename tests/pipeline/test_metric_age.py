from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from pipeline.emit import MAX_LOG_EVENT_AGE, MAX_METRIC_AGE, Logs, Metrics


@pytest.mark.aws_clock
def test_datums_older_than_two_weeks_are_not_sent(aws, now):
    end = now  # a backfill that ends now; CloudWatch compares the datums with its own clock
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    m = Metrics(client=cw, not_before=end - MAX_METRIC_AGE)
    m.add("RecordsIn", 5, end - timedelta(days=20), unit="Count", pipeline="orders")
    m.add("RecordsIn", 7, end - timedelta(days=2), unit="Count", pipeline="orders")
    m.flush()
    assert (m.sent, m.too_old, m.calls) == (1, 1, 1)
    stats = cw.get_metric_statistics(
        Namespace="Pipepulse/Reference",
        MetricName="RecordsIn",
        Dimensions=[{"Name": "Pipeline", "Value": "orders"}],
        StartTime=end - timedelta(days=30),
        EndTime=end,
        Period=86400,
        Statistics=["Sum"],
    )
    assert [p["Sum"] for p in stats["Datapoints"]] == [7.0]


@pytest.mark.aws_clock
def test_log_events_older_than_two_weeks_are_not_sent_but_still_billed_to_the_run(aws, now):
    logs = boto3.client("logs", region_name="us-east-1")
    out = Logs(client=logs, not_before=now - MAX_LOG_EVENT_AGE)
    sizes = [
        out.event("/g", "s", now - timedelta(days=20), {"message": "too old"}),
        out.event("/g", "s", now - timedelta(days=2), {"message": "kept ok"}),
    ]
    out.close()
    assert (out.too_old, out.calls, out.bytes) == (1, 3, sizes[1])  # CreateLogGroup, CreateLogStream, PutLogEvents
    assert sizes[0] == sizes[1] > 26  # lines of one length: the run's usage counts both
    got = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True)["events"]
    assert [json.loads(e["message"])["message"] for e in got] == ["kept ok"]
