from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import sqlalchemy as sa

from collectors.runner import collect
from store.metrics import metric_points_frame
from store.schema import collector_runs, metric_points, metric_series, watermarks

NS = "Pipepulse/Reference"
CONFIG = """
[collectors]
sources = ["cloudwatch"]
[collectors.cloudwatch]
namespaces = ["Pipepulse/Reference"]
stats = ["Sum"]
period_seconds = 300
lookback_hours = 1
overlap_minutes = 10
"""
N_SERIES = 520  # two GetMetricData calls of at most 500 queries


def _put(cw, datums):
    for i in range(0, len(datums), 1000):
        cw.put_metric_data(Namespace=NS, MetricData=datums[i : i + 1000])


@pytest.mark.aws_clock
def test_collect_metrics_exact_values_and_minimum_calls(aws, make_settings, engine, now):
    cw = boto3.client("cloudwatch")
    t = now - timedelta(minutes=50)  # in the collector's first hour, in a 300 s bucket of its own
    datums = []
    for i in range(N_SERIES):
        dims = [{"Name": "Pipeline", "Value": f"p{i:03d}"}]
        datums.append({"MetricName": "RecordsIn", "Dimensions": dims, "Timestamp": t, "Value": float(i)})
        datums.append({"MetricName": "RecordsIn", "Dimensions": dims, "Timestamp": t + timedelta(seconds=30), "Value": 0.5})
    _put(cw, datums)
    settings = make_settings(CONFIG)

    [first] = collect(settings, engine, now=now)
    assert first.status == "succeeded", first.error
    assert first.calls["monitoring:GetMetricData"] == math.ceil(N_SERIES / 500) == 2
    assert first.calls["monitoring:ListMetrics"] == 2  # 520 metrics, 500 per page
    assert first.api_cost_usd == N_SERIES * settings.prices.cloudwatch_metrics_requested_per_1000 / 1000
    assert first.rows_written == 2 * N_SERIES  # one series row and one point each
    with engine.connect() as conn:
        frame = metric_points_frame(conn, namespace=NS)
        assert len(frame) == N_SERIES
        p7 = frame[frame["pipeline"] == "p007"].iloc[0]
        assert (p7["metric_name"], p7["stat"], p7["ts"], p7["value"]) == ("RecordsIn", "Sum", t, 7.5)
        assert json.loads(p7["dimensions"]) == {"Pipeline": "p007"}
        assert conn.execute(sa.select(watermarks.c.value).where(watermarks.c.source == "cloudwatch")).scalar_one() == now.isoformat()
        assert conn.execute(sa.select(collector_runs.c.window_start, collector_runs.c.window_end)).one() == (now - timedelta(hours=1), now)

    # Nothing new: same minimum number of calls, nothing stored.
    [second] = collect(settings, engine, now=now + timedelta(minutes=5))
    assert (second.status, second.rows_written, second.calls["monitoring:GetMetricData"]) == ("succeeded", 0, 2)
    with engine.connect() as conn:
        assert conn.execute(sa.select(collector_runs.c.window_start).order_by(collector_runs.c.collector_run_id.desc()).limit(1)
                            ).scalar_one() == now - timedelta(minutes=10)

    # A late point inside the overlap changes one value; a new series gets the whole lookback.
    _put(cw, [{"MetricName": "RecordsIn", "Dimensions": [{"Name": "Pipeline", "Value": "p007"}], "Timestamp": now - timedelta(minutes=3),
               "Value": 2.0},
              {"MetricName": "RecordsOut", "Dimensions": [{"Name": "Pipeline", "Value": "new"}], "Timestamp": t, "Value": 4.0}])
    [third] = collect(settings, engine, now=now + timedelta(minutes=10))
    assert third.calls["monitoring:GetMetricData"] == 3  # 521 known series in 2 calls + 1 new series
    assert third.rows_written == 3  # the new series, its point, the late point
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_series)).scalar_one() == N_SERIES + 1
        assert conn.execute(sa.select(sa.func.count()).select_from(metric_points)).scalar_one() == N_SERIES + 2
        late = metric_points_frame(conn, pipeline="p007", start=now - timedelta(minutes=5))
        assert late[["ts", "value"]].values.tolist() == [[now - timedelta(minutes=5), 2.0]]


def test_long_first_window_is_cut_into_bounded_calls():
    from datetime import timedelta

    from collectors.cloudwatch import CloudWatchCollector

    c = CloudWatchCollector(namespaces=[], stats=["Sum"], period=300, lookback=timedelta(days=3),
                            overlap=timedelta(minutes=15), queries=[], max_window=timedelta(hours=24))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    # 3 days in 24 h windows, the last one short
    wins = c._windows(start, start + timedelta(days=2, hours=6), queries=10)
    assert [(a - start, b - start) for a, b in wins] == [
        (timedelta(0), timedelta(days=1)),
        (timedelta(days=1), timedelta(days=2)),
        (timedelta(days=2), timedelta(days=2, hours=6)),
    ]
    # 500 queries x 300 s: AWS's 100,800 datapoints allow 201 periods per call
    wins = c._windows(start, start + timedelta(hours=24), queries=500)
    assert wins[0][1] - wins[0][0] == timedelta(seconds=300 * 201)
    assert all(500 * ((b - a) / timedelta(seconds=300)) <= 100_800 for a, b in wins)
    assert wins[-1][1] == start + timedelta(hours=24)
