"""N days of the reference pipelines' history on a simulated clock, with realistic faults.

``backfill(settings, *, days, end, seed=7, progress=False)`` replays every run the configured
reference pipelines would have made in ``[end - days, end)``: cron slots, interval runs ("every N
minutes from the last start"), and file-arrival runs (a partner drops 2-4 files a day; a poll
every 5 minutes notices them). Each run goes through the same DAG executor, ledger, metrics, logs
and cost code as a live run; only time is simulated (the clock is set to the run's slot, stages
report how long they would have taken, nothing sleeps) and so are most of the records.

Real files, sparingly: the first run of each pipeline in every ``sample_every_hours`` (default
72) reads a real source file written to S3 for it (with that run's bad records in it, so real
rejects land in the quarantine with line numbers) and loads real output; every other run
processes *synthetic* counts drawn from the same volume model, so the series have no seams.
A 90-day backfill of the demo writes about 120 source files (under 0.5 MB each) instead of
~4,700; its AWS traffic is then mostly one CreateLogStream + PutLogEvents per run and one
PutMetricData per 1,000 datums, for the last 14 days before the wall clock only (less an hour's
margin): CloudWatch refuses older metrics and drops older log events, so those are counted in the
summary and not sent. Stages run inline
(``InlineExecutor``): their parallel branches share a start time on the simulated clock, without
paying thread hand-offs.

Faults, placed by fractions of the window so that short backfills have them too, all from
``seed`` (same seed, same history, ids included):

- transient errors: ~1.5% of stage attempts fail with S3 ``SlowDown``; retries absorb them
- bad-data day (day ``0.4 x days``): a quarter of ``orders`` records are malformed
- slow upstream (days ``0.7 x days`` .. +2): ``clickstream`` ingest 5x slower, some attempts
  time out and are retried
- outage (day ``0.55 x days``, 09:00-13:00 UTC): the lake bucket answers 503; loads fail after
  their retries, runs FAIL, and each failed run is retried once an hour later (trigger ``retry``).
  In a window of 61-200 days it falls 9 days before the end instead (after the runaway, before
  the schema break): inside CloudWatch Logs' 14 days, so its failed runs keep their log lines
- runaway (days ``0.8 x days`` .. +3): ``clickstream``'s transform runs with 3x the DPUs
- schema break (day ``0.96 x days``): the finance export lost a column; ``finance_daily``'s
  transform fails for good (not retried within the run), and so does its retry an hour later
- volume growth: +35% over the window, weekends 20% quieter
- in the bill only: a two-day data-transfer spike (day ``0.3 x days``)
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from pipeline import focus, states
from pipeline.config import pipeline_section, profile_for
from pipeline.dag import InlineExecutor, StageResult
from pipeline.emit import MAX_LOG_EVENT_AGE, MAX_METRIC_AGE, Logs, Metrics
from pipeline.ledger import Ledger
from pipeline.run import RunRequest, Runtime, Synthetic, run_pipeline
from pipeline.storage import S3Storage, SourceFile, location
from pipepulse.cron import CronSchedule
from pipepulse.errors import PipelineError
from pipepulse.settings import PipelineConfig, Settings

__all__ = ["BackfillSummary", "Faults", "backfill"]

POLL_SECONDS = 300  # how often the file-arrival sensor looks (simulated)
TRANSIENT_RATE = 0.015
SEND_MARGIN = timedelta(hours=1)  # metrics and log events this close to CloudWatch's 14 days: not sent
GROWTH = 0.35

_FAST = Config(parameter_validation=False, max_pool_connections=8)

DEFAULT_PIPELINES = (PipelineConfig(name="orders", schedule="0 * * * *"),)


@dataclass
class BackfillSummary:
    start: datetime
    end: datetime
    days: int
    seed: int
    ledger_path: str
    runs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_pipeline: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    records_in: int = 0
    records_rejected: int = 0
    cost_usd: float = 0.0
    sampled_runs: int = 0
    metric_points: int = 0
    metric_calls: int = 0
    metric_too_old: int = 0
    log_calls: int = 0
    log_events_too_old: int = 0
    export_keys: list[str] = field(default_factory=list)
    export_rows: int = 0
    export_total_usd: float = 0.0
    wall_seconds: float = 0.0

    def lines(self) -> list[str]:
        """A human summary."""
        st = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return [
            f"backfill {self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC ({self.days} days, seed {self.seed})",
            f"runs: {self.runs} ({st}); step retries {self.retries}; {self.sampled_runs} runs read real files",
            f"records: {self.records_in:,} in, {self.records_rejected:,} rejected; estimated cost ${self.cost_usd:,.2f}",
            f"metrics: {self.metric_points:,} points in {self.metric_calls} PutMetricData calls"
            f" ({self.metric_too_old:,} not sent: older than the 14 days CloudWatch accepts)",
            f"logs: {self.log_calls} calls ({self.log_events_too_old:,} events not sent: older than the 14 days"
            " CloudWatch Logs accepts)",
            f"cost export: {self.export_rows:,} FOCUS rows, ${self.export_total_usd:,.2f}, {len(self.export_keys)} file(s)",
            f"ledger: {self.ledger_path}; took {self.wall_seconds:.1f} s",
        ]


@dataclass(frozen=True)
class Faults:
    """Where the window's incidents fall (see module docstring)."""

    start: datetime
    days: int

    def day(self, frac: float) -> date:
        return (self.start + timedelta(days=int(self.days * frac))).date()

    @property
    def bad_data_day(self) -> date:
        return self.day(0.4)

    @property
    def outage_day(self) -> date:
        if 60 < self.days <= 200:
            # recent (inside CloudWatch Logs' 14 days), so its failed runs have their log lines
            return (self.start + timedelta(days=self.days - 9)).date()
        return self.day(0.55)

    @property
    def outage(self) -> tuple[datetime, datetime]:
        d = datetime.combine(self.outage_day, datetime.min.time(), UTC)
        return d + timedelta(hours=9), d + timedelta(hours=13)

    @property
    def slow_days(self) -> tuple[date, date]:
        d = self.day(0.7)
        return d, d + timedelta(days=2)

    @property
    def runaway_days(self) -> tuple[date, date]:
        d = self.day(0.8)
        return d, d + timedelta(days=3)

    @property
    def dt_spike_day(self) -> date:
        return self.day(0.3)

    @property
    def schema_break_day(self) -> date:
        # recent (inside CloudWatch's 14 days), so its metrics and log lines are still there
        return self.day(0.96)


class _SimClock:
    def __init__(self) -> None:
        self.t = datetime(2000, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def backfill(
    settings: Settings,
    *,
    days: int,
    end: datetime | date,
    seed: int = 7,
    progress: bool | Callable[[int, int], None] = False,
    state_transitions: Mapping[tuple[date, str, str], float] | None = None,
    glue_nights: Collection[date] | None = None,
) -> BackfillSummary:
    """Simulate ``days`` days of runs ending at ``end`` (see module docstring).

    ``state_transitions``: Step Functions transitions the bill charges besides the reference
    pipelines, by (day, pipeline tag, state machine ARN); the demo passes its executions'.
    ``glue_nights``: the days the nightly Glue job ran, the only days the bill charges it (the demo
    passes its runs'); None: every day. The bill ends at ``end``: its last day has only the hours
    before ``end`` (``pipeline.focus.account_rows``).

    ``progress``: True draws a bar on stderr when it is a terminal; a callable gets ``(days done,
    days)`` after each simulated day.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    t_wall = time.perf_counter()
    section = pipeline_section(settings)
    if isinstance(end, datetime):
        end_dt = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    else:
        end_dt = datetime.combine(end, datetime.min.time(), UTC)
    start = end_dt - timedelta(days=days)
    pipelines = [p for p in settings.pipelines if p.source == "reference"] or list(
        DEFAULT_PIPELINES
    )
    faults = Faults(start, days)
    # CloudWatch checks metric and log times against its own clock when they arrive, so what is
    # sent is decided by the wall clock, not by ``end``: an hour's margin covers the time the
    # backfill takes to send them (and an ``end`` floored to the hour)
    wall = datetime.now(UTC)
    metrics_from = wall - MAX_METRIC_AGE + SEND_MARGIN
    logs_from = wall - MAX_LOG_EVENT_AGE + SEND_MARGIN

    clock = _SimClock()
    source = location(section.source)
    rt = Runtime(
        section=section,
        prices=settings.prices,
        ledger=Ledger(section.ledger_path),
        # thousands of calls with parameters we build ourselves: skip botocore's validation
        metrics=Metrics(client=boto3.client("cloudwatch", config=_FAST), not_before=metrics_from),
        logs=Logs(client=boto3.client("logs", config=_FAST), workers=4, not_before=logs_from),
        source=source,
        output=location(section.output),
        quarantine=location(section.quarantine),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(f"backoff:{seed}"),
        pool=InlineExecutor(),  # simulated stages: parallel on the virtual clock, inline in fact
        flush_each_run=False,
    )
    for st in (rt.source, rt.output, rt.quarantine):
        st.ensure()
    summary = BackfillSummary(
        start=start, end=end_dt, days=days, seed=seed, ledger_path=str(section.ledger_path)
    )
    ids = random.Random(f"ids:{seed}")
    usage: dict[tuple[date, str], dict[str, float]] = {}
    try:
        rt.ledger.forget(pipelines=[p.name for p in pipelines], start=start, end=end_dt)
        events = _events(pipelines, start, end_dt, seed)
        heap = [(t, i, name, trig, 1) for i, (t, name, trig) in enumerate(events)]
        heapq.heapify(heap)
        seq = len(heap)
        last_sample: dict[str, datetime] = {}
        by_name = {p.name: p for p in pipelines}
        total_days = days
        current_day: date | None = None
        ticker = _Progress(total_days, enabled=progress)
        while heap:
            t, _, name, trig, attempt = heapq.heappop(heap)
            if t >= end_dt:
                continue
            if current_day != t.date():
                if current_day is not None:
                    rt.logs.flush(wait=False)
                    ticker.step()
                current_day = t.date()
            cfg = by_name[name]
            sample = name not in last_sample or t - last_sample[name] >= timedelta(
                hours=section.sample_every_hours
            )
            if sample:
                last_sample[name] = t
            run_key = f"{seed}:{name}:{t.isoformat()}:{attempt}"
            req = _request(rt, cfg, t, trig, attempt, run_key, faults, start, days, sample, ids)
            clock.t = t
            with rt.ledger.transaction():
                result = run_pipeline(rt, req)
            summary.runs += 1
            summary.sampled_runs += sample
            summary.by_status[result.status] = summary.by_status.get(result.status, 0) + 1
            summary.by_pipeline[name] = summary.by_pipeline.get(name, 0) + 1
            summary.retries += result.retries
            summary.records_in += result.records_in
            summary.records_rejected += result.records_rejected
            summary.cost_usd += result.cost_usd
            bucket = usage.setdefault((t.date(), name), {})
            for k, v in result.usage.items():
                bucket[k] = bucket.get(k, 0.0) + v
            if trig == "interval" and cfg.interval_seconds:
                nxt = (result.started_at or t) + timedelta(seconds=cfg.interval_seconds)
                seq += 1
                heapq.heappush(heap, (nxt, seq, name, "interval", 1))
            if result.status != states.SUCCEEDED and attempt == 1:
                seq += 1
                heapq.heappush(heap, (t + timedelta(hours=1), seq, name, "retry", 2))
        ticker.close()
        rt.metrics.flush()
        rt.logs.close()
        rows = focus.account_rows(
            start.date(),
            (end_dt - timedelta(microseconds=1)).date() + timedelta(days=1),
            usage,
            settings.prices,
            seed=seed,
            dt_spike_day=faults.dt_spike_day,
            state_transitions=state_transitions,
            until=end_dt,
            glue_nights=glue_nights,
        )
        summary.export_keys = focus.write_export(rows, section.export_bucket)
        summary.export_rows = len(rows)
        summary.export_total_usd = round(sum(float(r["BilledCost"]) for r in rows), 2)
    finally:
        summary.metric_points = rt.metrics.sent
        summary.metric_calls = rt.metrics.calls
        summary.metric_too_old = rt.metrics.too_old
        summary.log_calls = rt.logs.calls
        summary.log_events_too_old = rt.logs.too_old
        rt.logs.shutdown()
        rt.pool.shutdown(wait=True)
        rt.ledger.close()
    summary.cost_usd = round(summary.cost_usd, 2)
    summary.wall_seconds = time.perf_counter() - t_wall
    return summary


def _events(
    pipelines: list[PipelineConfig], start: datetime, end: datetime, seed: int
) -> list[tuple[datetime, str, str]]:
    """The first runs: every cron slot, the first interval run, every file-arrival run."""
    out: list[tuple[datetime, str, str]] = []
    for p in pipelines:
        if p.schedule:
            out += [(t, p.name, "schedule") for t in CronSchedule(p.schedule).between(start, end)]
        elif p.interval_seconds:
            offset = random.Random(f"offset:{seed}:{p.name}").randint(60, 900)
            out.append((start + timedelta(seconds=offset), p.name, "interval"))
        else:
            rng = random.Random(f"arrivals:{seed}:{p.name}")
            day = start.replace(hour=0)
            while day < end:
                for _ in range(rng.randint(2, 4)):
                    arrival = day + timedelta(seconds=rng.randint(7 * 3600, 19 * 3600))
                    noticed = arrival + timedelta(
                        seconds=POLL_SECONDS - arrival.timestamp() % POLL_SECONDS
                    )
                    if start <= noticed < end:
                        out.append((noticed, p.name, "event"))
                day += timedelta(days=1)
    return sorted(out)


def _request(
    rt: Runtime,
    cfg: PipelineConfig,
    t: datetime,
    trigger: str,
    attempt: int,
    run_key: str,
    faults: Faults,
    start: datetime,
    days: int,
    sample: bool,
    ids: random.Random,
) -> RunRequest:
    profile = profile_for(cfg.name)
    rng = random.Random(run_key)
    progress_frac = (t - start).total_seconds() / (days * 86400)
    weekend = t.weekday() >= 5
    records = int(
        profile.records_per_run
        * (1 + GROWTH * progress_frac)
        * (0.8 if weekend else 1.0)
        * rng.gauss(1.0, 0.08)
    )
    records = max(records, 10)
    reject_rate = profile.reject_rate
    if cfg.name == "orders" and t.date() == faults.bad_data_day:
        reject_rate = 0.25
    # binomial(records, reject_rate), by its normal approximation
    mean = records * reject_rate
    rejected = min(records, max(0, round(rng.gauss(mean, (mean * (1 - reject_rate)) ** 0.5))))
    slow = cfg.name == "clickstream" and faults.slow_days[0] <= t.date() <= faults.slow_days[1]
    runaway = (
        cfg.name == "clickstream" and faults.runaway_days[0] <= t.date() <= faults.runaway_days[1]
    )
    out_start, out_end = faults.outage
    in_outage = out_start <= t < out_end
    dpus = profile.transform_dpus * (3 if runaway else 1)
    timeout = rt.section.stage_timeout_seconds

    def seconds(stage: str, n: int, k: int, r: random.Random) -> float:
        base = {
            "ingest": 4 + n * 0.004,
            "validate": 2 + n * 0.001,
            "transform": 60 + n / 1000 * profile.transform_seconds_per_1k,
            "quarantine": 1 + n * 0.002,
            "load": 3 + n * 0.002,
        }[stage]
        if stage == "ingest" and slow:
            base *= 5
            if r.random() < 0.3:
                base = timeout * 1.5  # the upstream hangs: this attempt times out
        if stage == "transform" and runaway:
            base *= 1.2
        return round(base * r.lognormvariate(0, 0.1), 3)

    schema_break = cfg.name == "finance_daily" and t.date() == faults.schema_break_day

    def fault(stage: str, n_attempt: int) -> None:
        r = random.Random(f"{run_key}:{stage}:{n_attempt}:fault")
        if schema_break and stage == "transform":
            exc = PipelineError(
                "column 'fx_rate' missing from the finance export (the upstream schema changed)",
                error_type="SchemaMismatch",
                transient=False,
            )
            exc.seconds = round(20 + r.random() * 10, 3)  # type: ignore[attr-defined]
            raise exc
        if in_outage and stage == "load":
            exc = PipelineError(
                "PutObject on the lake bucket: 503 Service Unavailable",
                error_type="ServiceUnavailable",
                transient=True,
            )
            exc.seconds = round(2 + r.random() * 3, 3)  # type: ignore[attr-defined]
            raise exc
        if r.random() < TRANSIENT_RATE:
            exc = PipelineError(
                "S3 SlowDown: please reduce your request rate",
                error_type="SlowDown",
                transient=True,
            )
            exc.seconds = round(1 + r.random() * 5, 3)  # type: ignore[attr-defined]
            raise exc

    def timing(stage: str, n_attempt: int, result: StageResult) -> float:
        r = random.Random(f"{run_key}:{stage}:{n_attempt}:time")
        return seconds(stage, result.records_in or 0, result.records_rejected or 0, r)

    req = RunRequest(
        cfg.name,
        trigger=trigger,
        scheduled_for=t,
        run_id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
        correlation_id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
        attempt=attempt,
        faults=fault,
        timing=timing,
        queue_seconds=round(rng.uniform(0.5, 20.0), 3),
        dpus=dpus,
    )
    if sample and isinstance(rt.source, S3Storage):
        body = _source_file(profile, records, rejected, rng, t)
        key = f"{cfg.name}/{t:%Y/%m/%d}/{cfg.name}-{t:%Y%m%dT%H%M%S}-{attempt}.{profile.fmt}"
        resp = rt.source.s3.put_object(Bucket=rt.source.bucket, Key=rt.source._k(key), Body=body)
        req.inputs = [(rt.source, SourceFile(key, len(body), resp["ETag"].strip('"')))]
    else:
        avg = {"csv": 48, "jsonl": 130}[profile.fmt]
        req.synthetic = Synthetic(records=records, rejected=rejected, bytes=records * avg)
    return req


def _source_file(profile, records: int, rejected: int, rng: random.Random, t: datetime) -> bytes:
    """A source file of ``records`` records, ``rejected`` of them bad in one of several ways."""
    bad = set(rng.sample(range(records), rejected)) if rejected else set()
    ts = t.isoformat()
    lines: list[str] = []
    if profile.dataset == "clickstream":
        types = ("view", "click", "add_to_cart", "purchase")
        for i in range(records):
            rec: dict[str, Any] = {
                "event_id": f"e{t:%Y%m%d%H%M}-{i}",
                "session_id": f"s{rng.randint(1, 9999)}",
                "event_type": types[i % 4],
                "url": f"/p/{i % 97}?ref=x",
                "ts": ts,
            }
            if i in bad:
                kind = i % 3
                if kind == 0:
                    lines.append("{broken json")
                    continue
                if kind == 1:
                    del rec["session_id"]
                else:
                    rec["event_type"] = "hover"
            lines.append(json.dumps(rec, separators=(",", ":")))
        return ("\n".join(lines) + "\n").encode()
    if profile.dataset == "finance":
        lines.append("entry_id,account,amount,posted_on")
        for i in range(records):
            row = f"f{t:%Y%m%d}-{i},{4000 + i % 40},{rng.uniform(-5000, 5000):.2f},{t:%Y-%m-%d}"
            if i in bad:
                row = [
                    f"f{t:%Y%m%d}-{i},{4000 + i % 40},n/a,{t:%Y-%m-%d}",
                    f"f{t:%Y%m%d}-{i},{4000 + i % 40},12.00,31/12/2026",
                    f"f{t:%Y%m%d}-{i},{4000}",
                ][i % 3]
            lines.append(row)
    elif profile.dataset == "partner":
        lines.append("sku,partner,qty,price")
        for i in range(records):
            row = f"SKU{i:06d},acme,{rng.randint(1, 50)},{rng.uniform(1, 200):.2f}"
            if i in bad:
                row = [
                    f"SKU{i:06d},acme,-3,9.99",
                    f"SKU{i:06d},acme,many,9.99",
                    f"SKU{i:06d},acme",
                ][i % 3]
            lines.append(row)
    else:
        lines.append("order_id,customer_id,amount,currency,created_at")
        for i in range(records):
            row = f"o{t:%Y%m%d%H%M}-{i},c{rng.randint(1, 5000)},{rng.uniform(5, 400):.2f},USD,{ts}"
            if i in bad:
                row = [
                    f"o{t:%Y%m%d%H%M}-{i},c1,abc,USD,{ts}",
                    f"o{t:%Y%m%d%H%M}-{i},c1,10.00,XXX,{ts}",
                    f"o{t:%Y%m%d%H%M}-{i},c1,10.00",
                    f"o{t:%Y%m%d%H%M}-{i},,10.00,USD,{ts}",
                ][i % 4]
            lines.append(row)
    return ("\n".join(lines) + "\n").encode()


class _Progress:
    """Days done, reported to a callback ``(done, total)`` or drawn as a bar on a terminal.

    (pipeline/ may not import cli.progress, so ``progress=True`` draws its own bar; the CLI
    passes a callback.)
    """

    def __init__(self, total: int, *, enabled: bool | Callable[[int, int], None]) -> None:
        self.total = total
        self.done = 0
        self.callback: Callable[[int, int], None] | None = None
        if callable(enabled):
            self.callback = enabled
        elif enabled and sys.stderr.isatty():
            self.callback = self._draw

    def _draw(self, done: int, total: int) -> None:
        filled = int(30 * done / total)
        sys.stderr.write(f"\rbackfill [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} days")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def step(self) -> None:
        self.done = min(self.total, self.done + 1)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.callback is not None and self.done < self.total:
            self.done = self.total
            self.callback(self.done, self.total)
