"""Backfill: 90 days of hourly runs of three reference pipelines; wall time and peak memory.

    python -m bench.bench_backfill [--days 90] [--seed 7]

Everything as ``pipepulse pipeline backfill`` does it: a local AWS (moto) started in this
process, reached over HTTP through ``AWS_ENDPOINT_URL``; a fresh ledger in a temporary folder.
Pipelines: ``orders`` (cron, hourly), ``clickstream`` (every 60 minutes from its last start) and
``inventory`` (cron, hourly at :30).

The history ends at the last whole hour, as the demo's does: CloudWatch (and moto) check metric
and log times against the wall clock, so a fixed end date would be refused once it is 14 days
old. Baseline, same run: the AWS calls a backfill cannot avoid (per run of the last 14 days, the
ones whose events it sends: CreateLogStream + PutLogEvents of its events, from 4 threads as the
backfill ships them; PutMetricData of the datums it sent, in batches of 1,000), timed for a
tenth of those runs and scaled up. The ratio says how much the simulation itself (DAG, ledger, sampled
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


def floor_seconds(runs: int, *, end: datetime, events_per_run: int = 13, datums: int = 0) -> float:
    """Time of the unavoidable AWS calls: ``runs`` runs' log events and ``datums`` metric datums,
    timed from the last 13 days before ``end`` (inside CloudWatch's 14)."""
    import concurrent.futures as cf

    import boto3
    from botocore.config import Config

    fast = Config(parameter_validation=False, max_pool_connections=8)
    logs = boto3.client("logs", config=fast)
    cw = boto3.client("cloudwatch", config=fast)
    group = "/bench/floor"
    logs.create_log_group(logGroupName=group)
    t0 = end - timedelta(days=13)
    msg = (
        '{"level":"INFO","correlation_id":"'
        + "c" * 36
        + '","run_id":"'
        + "r" * 36
        + '","message":"stage transform succeeded in 171.2 s"}'
    )

    def ship(i: int) -> None:
        stream = f"{t0:%Y/%m/%d}/{i:08d}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [
            {
                "timestamp": int((t0 + timedelta(minutes=i, seconds=j)).timestamp() * 1000),
                "message": msg,
            }
            for j in range(events_per_run)
        ]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    datums = [
        {
            "MetricName": f"M{j % 11}",
            "Dimensions": [{"Name": "Pipeline", "Value": "p"}],
            "Timestamp": t0 + timedelta(seconds=j),
            "Value": float(j),
            "Unit": "Count",
        }
        for j in range(datums)
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
    from pipeline.backfill import SEND_MARGIN, backfill
    from pipeline.emit import MAX_LOG_EVENT_AGE
    from pipeline.ledger import Ledger
    from pipepulse.settings import load_settings

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.toml"
        cfg.write_text(CONFIG.format(ledger=Path(tmp) / "ledger.db"))
        settings = load_settings({"PIPEPULSE_DATA_DIR": tmp}, config_path=cfg)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cutoff = (datetime.now(UTC) - MAX_LOG_EVENT_AGE + SEND_MARGIN).isoformat()  # as the backfill sends
        t = time.perf_counter()
        summary = backfill(settings, days=args.days, end=end, seed=args.seed)
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        server.reset()
        with Ledger(Path(tmp) / "ledger.db") as led:
            logged = sum(1 for r in led.runs() if (r["queued_at"] or "") >= cutoff)
        tenth = max(1, logged // 10)
        floor = (
            floor_seconds(tenth, end=end, datums=summary.metric_points // 10)
            * logged
            / tenth
        )
    server.stop()
    print("\n".join(summary.lines()))
    print(
        f"backfill: {args.days} days, {summary.runs:,} runs of 3 pipelines in {wall:.1f} s "
        f"({summary.runs / wall:,.0f} runs/s); peak RSS {peak / 1024:,.0f} MB (before: {rss0 / 1024:,.0f} MB)"
    )
    print(
        f"floor (unavoidable log + metric calls: {logged:,} runs of the last 14 days, scaled from {tenth:,}): {floor:.1f} s; "
        f"backfill / floor = {wall / floor:.2f}x"
    )


if __name__ == "__main__":
    main()
