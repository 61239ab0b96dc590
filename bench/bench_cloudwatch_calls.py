"""GetMetricData calls per collection pass against the minimum, for 2,000 series over one day.

    python -m bench.bench_cloudwatch_calls [--series 2000] [--hours 24] [--period 300]

Puts ``series`` CloudWatch series (namespace ``Bench/Pipes``, one datapoint per series per
period over ``hours``) straight into the backend of an in-process local AWS (HTTP puts of
576,000 points would take minutes and are not what is measured), then runs the CloudWatch collector twice
into a fresh SQLite store: a first pass (every series new, one ``hours`` window) and a second
pass five minutes later with nothing new (the overlap window only). For each pass it prints the
GetMetricData calls made against the minimum ``ceil(series / 500)`` per window, ListMetrics
pages, rows written, the pass's price and time, and checks that every point arrived.

moto's own ``get_metric_data`` and ``list_metrics`` scan every stored datapoint per query and
per period (O(queries x periods x points): hours for 576,000 points), so this script swaps
in indexed versions of those two backend methods with the same answers for MetricStat queries
(Sum, Average, Minimum, Maximum, SampleCount). That changes moto's speed, not the requests the
collector makes, which are what is measured.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

NS = "Bench/Pipes"


def _index_moto() -> None:
    """Replace moto's O(points) CloudWatch scans with dictionary lookups (same answers)."""
    from moto.cloudwatch.models import CloudWatchBackend

    def series_of(md):
        return (md.namespace, md.name, tuple(sorted((d.name, d.value) for d in md.dimensions)))

    def index(self):
        data = self.get_all_metrics()
        cached = getattr(self, "_bench_index", None)
        if cached is not None and cached[0] == len(data):
            return cached[1]
        by_series = defaultdict(list)
        for md in data:
            by_series[series_of(md)].append(md)
        self._bench_index = (len(data), by_series)
        return by_series

    def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
        start_time, end_time = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
        by_series = index(self)
        out = []
        for q in queries:
            ms = q["MetricStat"]
            key = (ms["Metric"]["Namespace"], ms["Metric"]["MetricName"],
                   tuple(sorted((d["Name"], d["Value"]) for d in ms["Metric"].get("Dimensions", []))))
            period, stat = int(ms["Period"]), ms["Stat"]
            buckets = defaultdict(list)
            for md in by_series.get(key, []):
                if start_time <= md.timestamp < end_time:
                    k = int((md.timestamp - start_time).total_seconds()) // period
                    buckets[k].append(float(md.value))
            stamps, values = [], []
            for k in sorted(buckets):
                v = buckets[k]
                values.append({"Sum": sum(v), "Average": sum(v) / len(v), "Minimum": min(v), "Maximum": max(v),
                               "SampleCount": float(len(v))}[stat])
                stamps.append(start_time + timedelta(seconds=k * period))
            if scan_by == "TimestampDescending":
                stamps.reverse()
                values.reverse()
            if q.get("ReturnData", True):
                out.append({"id": q["Id"], "label": q.get("Label") or f"{key[1]} {stat}", "values": values,
                            "timestamps": stamps, "status_code": "Complete"})
        return out

    def get_filtered_metrics(self, metric_name, namespace, dimensions):
        firsts = []
        for (ns, name, _dims), mds in index(self).items():
            if (not namespace or ns == namespace) and (not metric_name or name == metric_name) and not dimensions:
                firsts.append(mds[0])
        return firsts

    CloudWatchBackend.get_metric_data = get_metric_data
    CloudWatchBackend.get_filtered_metrics = get_filtered_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--period", type=int, default=300)
    args = parser.parse_args(argv)

    import boto3

    import collectors.base  # noqa: F401 - the retry policy's defaults stay
    from collectors.runner import collect
    from devkit.localaws import LocalAWS
    from pipepulse.settings import load_settings
    from store.db import connect, upgrade

    _index_moto()
    server = LocalAWS().start()
    os.environ.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-cw-"))
    config = tmp / "pipepulse.toml"
    config.write_text(
        '[collectors]\nsources = ["cloudwatch"]\n[collectors.cloudwatch]\n'
        f'namespaces = ["{NS}"]\nstats = ["Sum"]\nperiod_seconds = {args.period}\nlookback_hours = {args.hours}\n'
        "overlap_minutes = 15\n"
    )
    settings = load_settings({"PIPEPULSE_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "PIPEPULSE_DATA_DIR": str(tmp)},
                             config_path=config)
    engine = connect(settings.database_url)
    upgrade(engine)

    end = datetime(2026, 11, 20, tzinfo=UTC)
    periods = args.hours * 3600 // args.period
    cw = boto3.client("cloudwatch")
    cw.list_metrics(Namespace=NS)  # creates the backend
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends["123456789012"]["us-east-1"]
    t0 = time.perf_counter()
    datums = []
    total_value = 0.0
    for s in range(args.series):
        dims = [{"Name": "Pipeline", "Value": f"p{s // 10:04d}"}, {"Name": "Stage", "Value": f"s{s % 10}"}]
        for k in range(periods):
            value = float((s * 7 + k) % 100)
            total_value += value
            datums.append({"MetricName": "RecordsIn", "Dimensions": dims,
                           "Timestamp": (end - timedelta(hours=args.hours) + timedelta(seconds=k * args.period)).replace(tzinfo=None),
                           "Value": value})  # naive UTC, as moto stores parsed requests
            if len(datums) == 1000:
                backend.put_metric_data(NS, datums)  # in process: the puts are not what is measured
                datums = []
    if datums:
        backend.put_metric_data(NS, datums)
    put_s = time.perf_counter() - t0
    points = args.series * periods
    minimum = math.ceil(args.series / 500)
    print(f"series {args.series:,}, {periods} points each at {args.period} s = {points:,} points (put in {put_s:.1f} s)")
    print(f"minimum GetMetricData calls per window: ceil({args.series} / 500) = {minimum}")

    for label, now in (("first pass (all new, one window)", end), ("second pass, nothing new", end + timedelta(minutes=5))):
        t = time.perf_counter()
        [r] = collect(settings, engine, now=now)
        dt = time.perf_counter() - t
        gmd = r.calls.get("monitoring:GetMetricData", 0)
        lm = r.calls.get("monitoring:ListMetrics", 0)
        print(f"{label}: {r.status}; GetMetricData {gmd} (minimum {minimum}, ratio {gmd / minimum:.2f}); "
              f"ListMetrics pages {lm}; rows written {r.rows_written:,}; ${r.api_cost_usd:.4f}; {dt:.1f} s")

    import sqlalchemy as sa

    from store.schema import metric_points

    with engine.connect() as conn:
        stored, total = conn.execute(sa.select(sa.func.count(), sa.func.sum(metric_points.c.value))).one()
    ok = stored == points and math.isclose(total, total_value)
    print(f"stored points {stored:,} of {points:,}, value sum {total:,.0f} of {total_value:,.0f}: {'complete' if ok else 'MISMATCH'}")
    server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
