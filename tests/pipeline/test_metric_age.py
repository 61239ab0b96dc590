from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from pipeline.emit import MAX_METRIC_AGE, Metrics


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
