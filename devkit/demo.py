"""The demo: 90 days of a realistic data platform, collected and analysed like the real thing.

``build_demo`` runs every real part in order against a local AWS (moto plus stand-ins):

1. Step Functions state machines with real executions and Glue jobs with runs;
2. the reference pipeline's backfill on a simulated clock (ledger, S3 files, CloudWatch
   metrics and logs, and a FOCUS cost export written where AWS Data Exports writes it, which
   bills the state transitions of step 1's executions);
3. the Cost Explorer stand-in loaded with the same account's line items;
4. one pass of every collector into the store, then anomaly detection and forecasts.

Nothing is written to the store except through the collectors, exactly as in production.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from sqlalchemy.engine import Engine

from collectors.runner import enabled_sources, run_source, sync_pipelines
from devkit.aws_seed import seed_aws_sources, seed_lambda_reports
from devkit.localaws.costexplorer import CostExplorerStandIn
from jobs import detect, forecast
from pipeline.backfill import backfill
from pipeline.config import pipeline_section
from pipepulse.errors import ConfigError
from pipepulse.files import private_dir, write_private
from pipepulse.settings import DEMO_MARKER, Settings
from store.stats import table_counts

__all__ = ["DemoSummary", "build_demo", "reset_demo_dir"]

log = logging.getLogger(__name__)
MARKER = DEMO_MARKER


@dataclass
class DemoSummary:
    days: int
    end: datetime
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, what)
    counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def reset_demo_dir(settings: Settings) -> Path:
    """Empty the demo's data folder; refuses a folder that pipepulse's demo did not create."""
    folder = settings.data_dir
    marker = folder / MARKER
    if folder.exists() and any(folder.iterdir()) and not marker.exists():
        raise ConfigError(
            f"{folder} holds files the demo did not create; the demo only rebuilds a folder it owns. "
            "Point [pipepulse] data_dir (or PIPEPULSE_DATA_DIR) at an empty folder for the demo"
        )
    if marker.exists():
        shutil.rmtree(folder)
    # 0700, as are the parents it creates; an empty folder of the user's is kept, mode and all
    private_dir(folder)
    write_private(marker, "created by `pipepulse demo`; rebuilt by every `make demo`\n", what="demo marker")
    return folder


STEPS = 8  # the steps build_demo announces, for "[n/8]" (tests/test_demo_e2e.py lists them)


BAR_WIDTH = 30


def bar_line(label: str, done: int, total: int, unit: str, seconds: float, what: str = "") -> str:
    """``label [#########.....................] 27/90 days, 12 s``: plain text, no control characters."""
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    tail = f" ({what})" if what else ""
    return f"{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {unit}{tail}, {seconds:.0f} s"


def build_demo(settings: Settings, engine: Engine, *, days: int, end: datetime, local_aws: Any, progress: bool = False,
               announce: Any = None, bar: Any = None) -> DemoSummary:
    """Produce ``days`` of history ending at ``end`` and collect it into the store. ``announce``
    (a callable taking one line) hears each step's name when it starts, and its counts and
    elapsed time when it ends. ``bar`` (a callable taking ``(line, done, total)``) hears the
    steps of known size as they go: the backfill's days and the collectors' sources, each line
    drawn by ``bar_line`` (``cli/commands/demo.py`` redraws it on a terminal and prints every
    tenth otherwise)."""
    summary = DemoSummary(days=days, end=end)
    started = time.perf_counter()

    def ticker(name: str, unit: str):
        n = len(summary.steps) + 1
        t0 = time.perf_counter()
        last = [-1]

        def tick(done: int, total: int, what: str = "") -> None:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            if bar is not None and (filled != last[0] or done == total or what):
                last[0] = filled
                bar(bar_line(f"demo [{n}/{STEPS}] {name}", done, total, unit, time.perf_counter() - t0, what), done, total)
        return tick

    def step(name: str, fn, describe=lambda r: ""):
        n = len(summary.steps) + 1
        if announce:
            announce(f"demo [{n}/{STEPS}] {name} ...")
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        text = describe(result)
        summary.steps.append((name, dt, text))
        if announce:
            announce(f"demo [{n}/{STEPS}] {name}: {text or 'done'} ({dt:.1f} s; {time.perf_counter() - started:.0f} s so far)")
        log.info(f"demo step done: {name}", extra={"step": name, "seconds": round(dt, 2)})
        return result

    # the AWS sources first: the bill the backfill writes charges their Step Functions executions
    seeded = step("Step Functions and Glue", lambda: seed_aws_sources(settings, now=end, history_days=days), _describe)
    days_done = ticker("pipeline backfill", "days") if bar is not None else progress
    filled = step("pipeline backfill", lambda: backfill(settings, days=days, end=end, progress=days_done,
                                                        state_transitions=seeded.sfn_transitions,
                                                        glue_nights=seeded.glue_nights), _describe_backfill)
    step("Lambda REPORT lines", lambda: seed_lambda_reports(settings, now=end), _describe)
    step("Cost Explorer data", lambda: _load_cost_explorer(settings, local_aws, filled.export_keys), _describe)
    passes = step("collect", lambda: _collect(settings, engine, end + timedelta(minutes=5), ticker("collect", "sources")),
                  _describe_passes)
    airflow = step("Airflow (recorded)", lambda: collect_recorded_airflow(settings, engine, end=end, days=days), _describe_passes)
    passes = [*passes, *airflow]
    failed = [p for p in passes if getattr(p, "status", "") != "succeeded"]
    if failed:
        summary.extra["failed_sources"] = [(p.source, p.error) for p in failed]
    step("detect anomalies", lambda: detect.run(settings, engine, now=end + timedelta(minutes=6)), _describe)
    step("forecasts", lambda: forecast.run(settings, engine, now=end + timedelta(minutes=7)), _describe)
    summary.counts = table_counts(engine)
    return summary


def _collect(settings: Settings, engine: Engine, now: datetime, tick: Any) -> list[Any]:
    """``collectors.runner.collect`` (every enabled source, once), one source at a time so that
    the bar can say which one is running."""
    sources = enabled_sources(settings)
    sync_pipelines(settings, engine, now=now)
    passes = []
    for i, source in enumerate(sources):
        tick(i, len(sources), source.name)
        passes.append(run_source(settings, engine, source, now=now))
    tick(len(sources), len(sources))
    return passes


def collect_recorded_airflow(settings: Settings, engine: Engine, *, end: datetime, days: int) -> list[Any]:
    """The demo's Airflow pipeline: the real collector reads a real Airflow's recorded answers
    (devkit/airflow_recording.json), served re-dated by devkit/airflow_replay.py, one round a day."""
    from devkit.airflow_replay import AirflowReplay
    from devkit.record_airflow import RECORDING

    if not RECORDING.exists():  # not recorded yet: python -m devkit.record_airflow
        log.info("no Airflow recording; the demo has no Airflow pipeline", extra={"path": str(RECORDING)})
        return []
    replay = AirflowReplay(end=end, days=days).start()
    try:
        raw = dict(settings.raw)
        collectors = dict(raw.get("collectors", {}))
        collectors["airflow"] = {**collectors.get("airflow", {}), "url": replay.url, "username": "demo",
                                 "password_env": "PIPEPULSE_DEMO_AIRFLOW_PASSWORD", "lookback_days": days + 1}
        raw["collectors"] = collectors
        env = {**settings.environment, "PIPEPULSE_DEMO_AIRFLOW_PASSWORD": "replay"}
        local = dataclasses.replace(settings, raw=raw, environment=env)
        return [run_source(local, engine, "airflow", now=end + timedelta(minutes=5))]
    finally:
        replay.stop()


def _load_cost_explorer(settings: Settings, local_aws: Any, export_keys: list[str]) -> str:
    """Give the Cost Explorer stand-in the demo account's line items, read back from the FOCUS
    export the backfill wrote, so Cost Explorer and the export describe the same bill."""
    bucket = pipeline_section(settings).export_bucket
    s3 = boto3.client("s3", region_name=settings.aws_region)
    items: list[dict[str, Any]] = []
    for key in export_keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = gzip.decompress(body).decode() if key.endswith(".gz") else body.decode()
        for row in csv.DictReader(io.StringIO(text)):
            items.append(
                {
                    "date": row["ChargePeriodStart"][:10],
                    "account": row["SubAccountId"],
                    "service": row["ServiceName"],
                    "region": row["RegionId"],
                    "usage_type": row["x_UsageType"],
                    "tags": json.loads(row["Tags"]) if row.get("Tags") else {},
                    "unblended_cost": float(row["BilledCost"] or 0),
                    "amortized_cost": float(row["EffectiveCost"] or 0),
                    "usage_quantity": float(row["ConsumedQuantity"] or 0),
                }
            )
    standin = local_aws.app(CostExplorerStandIn)
    standin.configure(today=max(i["date"] for i in items) if items else None)
    standin.load_line_items(items)
    return f"{len(items):,} line items from {len(export_keys)} export file(s)"


def _describe(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, list | tuple):
        return f"{len(result)} item(s)"
    text = str(result)
    return text if len(text) < 200 else text[:197] + "..."


def _describe_backfill(summary: Any) -> str:
    st = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_status.items()))
    return f"{summary.runs:,} runs ({st}), {summary.retries} step retries, ${summary.export_total_usd:,.0f} billed"


def _describe_passes(passes: Any) -> str:
    parts = []
    for p in passes:
        parts.append(f"{p.source}: {getattr(p, 'status', '?')}, {getattr(p, 'rows_written', 0):,} rows, {getattr(p, 'api_calls', 0)} calls")
    return "; ".join(parts)


def default_end(now: datetime | None = None) -> datetime:
    """The demo's history ends at the last whole hour."""
    now = now or datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)
