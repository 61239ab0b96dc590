"""Backfill: 90 days of hourly runs of three reference pipelines; wall time and peak memory.

    python -m bench.bench_backfill [--days 90] [--seed 7]

Everything as ``pipepulse pipeline backfill`` does it: a local AWS (moto) started in this
process, reached over HTTP through ``AWS_ENDPOINT_URL``; a fresh ledger in a temporary folder.
Pipelines: ``orders`` (cron, hourly), ``clickstream`` (every 60 minutes from its last start) and
``inventory`` (cron, hourly at :30).

Baseline, same run: the AWS calls a backfill cannot avoid (per run: CreateLogStream +
PutLogEvents of its events, from 4 threads as the backfill ships them; PutMetricData of the
datums it sent, in batches of 1,000), timed for a tenth of the runs and scaled up. The ratio says how much the simulation itself (DAG, ledger, sampled
files, cost export) adds on top of that floor. Peak memory is the process's max RSS, moto's
in-process server included.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CONFIG = """
[[pipelines]]
name = "orders"
schedule = "0 * * * *"
[[pipelines]]
name = "clickstream"
interval_minutes = 60
[[pipelines]]
name = "inventory"
schedule = "30 * * * *"

[pipeline]
ledger_path = "{ledger}"
"""


def floor_seconds(runs: int, *, events_per_run: int = 13, datums_per_run: float = 11.0) -> float:
    """Time of the unavoidable AWS calls for ``runs`` runs."""
    import concurrent.futures as cf

    import boto3
    from botocore.config import Config

    fast = Config(parameter_validation=False, max_pool_connections=8)
    logs = boto3.client("logs", config=fast)
    cw = boto3.client("cloudwatch", config=fast)
    group = "/bench/floor"
    logs.create_log_group(logGroupName=group)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    msg = (
        '{"level":"INFO","correlation_id":"'
        + "c" * 36
        + '","run_id":"'
        + "r" * 36
        + '","message":"stage transform succeeded in 171.2 s"}'
    )

    def ship(i: int) -> None:
        stream = f"2026/01/01/{i:08d}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [
            {
                "timestamp": int((t0 + timedelta(hours=i, seconds=j)).timestamp() * 1000),
                "message": msg,
            }
            for j in range(events_per_run)
        ]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    datums = [
        {
            "MetricName": f"M{j % 11}",
            "Dimensions": [{"Name": "Pipeline", "Value": "p"}],
            "Timestamp": t0 + timedelta(minutes=j),
            "Value": float(j),
            "Unit": "Count",
        }
        for j in range(int(runs * datums_per_run))
    ]
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(4) as pool:
        list(pool.map(ship, range(runs)))
    for k in range(0, len(datums), 1000):
        cw.put_metric_data(Namespace="Bench/Floor", MetricData=datums[k : k + 1000])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from devkit.localaws import LocalAWS

    server = LocalAWS().start()
    os.environ.update(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    from pipeline.backfill import backfill
    from pipepulse.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.toml"
        cfg.write_text(CONFIG.format(ledger=Path(tmp) / "ledger.db"))
        settings = load_settings({"PIPEPULSE_DATA_DIR": tmp}, config_path=cfg)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        summary = backfill(
            settings, days=args.days, end=datetime(2026, 11, 20, tzinfo=UTC), seed=args.seed
        )
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        server.reset()
        tenth = max(1, summary.runs // 10)
        floor = (
            floor_seconds(tenth, datums_per_run=summary.metric_points / summary.runs)
            * summary.runs
            / tenth
        )
    server.stop()
    print("\n".join(summary.lines()))
    print(
        f"backfill: {args.days} days, {summary.runs:,} runs of 3 pipelines in {wall:.1f} s "
        f"({summary.runs / wall:,.0f} runs/s); peak RSS {peak / 1024:,.0f} MB (before: {rss0 / 1024:,.0f} MB)"
    )
    print(
        f"floor (unavoidable log + metric calls, scaled from {tenth:,} runs): {floor:.1f} s; "
        f"backfill / floor = {wall / floor:.2f}x"
    )


if __name__ == "__main__":
    main()
