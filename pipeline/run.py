"""One run of a reference pipeline: its DAG, and everything it records about itself.

The DAG::

    ingest -> validate -+-> transform -> load
                        +-> quarantine

``ingest`` reads the run's source files (CSV or JSON lines, from S3 or a folder), ``validate``
types and checks every record against the dataset's schema, then two independent branches run
in parallel: ``transform`` (dedupe by key, derived fields; priced as a Glue job) followed by
``load`` (one output object per input set, written atomically under a key derived from the
inputs, so a rerun replaces it with the same bytes), and ``quarantine`` (rejected records with
file, line and reason, as JSON lines).

``run_pipeline(rt, request)`` records the run as it goes: ledger rows for the run and every step
attempt, JSON log events with the run's correlation id (CloudWatch Logs and ``echo``), and at the
end the run's metrics and its cost (usage x ``settings.prices``). A request may carry
``synthetic`` counts instead of files (the backfill's unsampled runs), ``faults`` (a hook that may
raise in a stage attempt) and ``timing`` (simulated stage durations).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from pipeline import states
from pipeline.config import PipelineSection, Profile, profile_for
from pipeline.cost import cost_usd
from pipeline.dag import Stage, StageContext, StageResult, error_type, execute
from pipeline.emit import Logs, Metrics, log_group, log_stream
from pipeline.ledger import Ledger, iso
from pipeline.records import SCHEMAS, Reject, Row, parse, transform, validate
from pipeline.storage import LocalStorage, S3Storage, SourceFile, Storage, location
from pipepulse.errors import InputError
from pipepulse.settings import Prices

__all__ = [
    "STAGES",
    "RunRequest",
    "RunResult",
    "Runtime",
    "Synthetic",
    "resolve_inputs",
    "run_pipeline",
]

STAGES = ("ingest", "validate", "transform", "quarantine", "load")


@dataclass
class Runtime:
    """What runs need from outside; one per process (or per backfill)."""

    section: PipelineSection
    prices: Prices
    ledger: Ledger
    metrics: Metrics
    logs: Logs
    source: Storage
    output: Storage
    quarantine: Storage
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    pool: cf.Executor = field(
        default_factory=lambda: cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="stage")
    )
    flush_each_run: bool = True
    on_transition: Callable[[str, str, int, str], None] | None = (
        None  # (kind, stage, attempt, status)
    )

    @classmethod
    def create(
        cls, section: PipelineSection, prices: Prices, *, echo: TextIO | None = None, **kw: Any
    ) -> Runtime:
        """A runtime with the ledger, AWS clients and storages named in ``section``."""
        return cls(
            section=section,
            prices=prices,
            ledger=Ledger(section.ledger_path),
            metrics=Metrics(),
            logs=Logs(echo=echo),
            source=location(section.source),
            output=location(section.output),
            quarantine=location(section.quarantine),
            **kw,
        )

    def close(self) -> None:
        self.metrics.flush()
        self.logs.flush()
        self.pool.shutdown(wait=False)
        self.ledger.close()


@dataclass(frozen=True)
class Synthetic:
    """Counts a simulated run pretends to read (no files): records, bad ones among them, bytes."""

    records: int
    rejected: int
    bytes: int


@dataclass
class RunRequest:
    pipeline: str
    trigger: str = "manual"
    scheduled_for: datetime | None = None
    inputs: list[tuple[Storage, SourceFile]] | None = (
        None  # None: the new files under source/<pipeline>/
    )
    run_id: str | None = None
    correlation_id: str | None = None
    attempt: int = 1
    synthetic: Synthetic | None = None
    faults: Callable[[str, int], None] | None = None  # may raise in (stage, attempt)
    timing: Callable[[str, int, StageResult], float] | None = (
        None  # simulated seconds of (stage, attempt)
    )
    queue_seconds: float = 0.0  # simulated wait between queued and started
    dpus: int | None = None  # Glue DPUs of the transform (default: the profile's)


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    status: str
    correlation_id: str
    records_in: int = 0
    records_out: int = 0
    records_rejected: int = 0
    bytes_in: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    usage: dict[str, float] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    output_key: str | None = None
    quarantine_key: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


def resolve_inputs(url: str) -> list[tuple[Storage, SourceFile]]:
    """The files ``url`` names: one file, or every file under a folder / ``s3://`` prefix."""
    if url.startswith("s3://"):
        bucket, _, key = url[5:].partition("/")
        if not bucket:
            raise InputError(f"{url}: no bucket; expected s3://bucket/key")
        if key and not key.endswith("/"):
            parent, _, name = key.rpartition("/")
            st = S3Storage(bucket, parent)
            found = [f for f in st.list(name) if f.key == name]
            if found:
                return [(st, found[0])]
            key += "/"
        st = S3Storage(bucket, key)
        files = st.list()
    else:
        from pathlib import Path

        path = Path(url)
        if path.is_file():
            st = LocalStorage(path.parent)
            files = [f for f in st.list(path.name) if f.key == path.name]
        elif path.is_dir():
            st = LocalStorage(path)
            files = st.list()
        else:
            raise InputError(f"{url}: no such file or folder")
    if not files:
        raise InputError(f"{url}: no files found")
    return [(st, f) for f in files]


def run_pipeline(rt: Runtime, request: RunRequest) -> RunResult:
    """Run the pipeline once, recording everything (see module docstring)."""
    profile = profile_for(request.pipeline)
    run_id = request.run_id or str(uuid.uuid4())
    correlation_id = request.correlation_id or str(uuid.uuid4())
    queued_at = rt.clock()
    rec = _Recorder(rt, request, profile, run_id, correlation_id, queued_at)
    rec.queued()
    if request.queue_seconds > 0:
        rt.sleep(request.queue_seconds)
    inputs = request.inputs
    if inputs is None and request.synthetic is None:
        loaded = rt.ledger.loaded_inputs(request.pipeline)
        inputs = [
            (rt.source, f)
            for f in rt.source.list(f"{request.pipeline}/")
            if (f.key, f.etag) not in loaded
        ]
    rec.bytes_in = sum(f.size for _, f in inputs or [])
    stages = _build(rt, request, profile, run_id, inputs or [])
    outcome = execute(
        stages, observer=rec, clock=rt.clock, sleep=rt.sleep, rng=rt.rng, pool=rt.pool
    )
    result = rec.finish(outcome)
    if result.status == states.SUCCEEDED and inputs:
        rt.ledger.mark_inputs(
            request.pipeline,
            run_id,
            [(_input_id(rt, s, f), f.etag) for s, f in inputs],
        )
    if rt.flush_each_run:
        rt.metrics.flush()
        rt.logs.flush()
    return result


def _input_id(rt: Runtime, storage: Storage, f: SourceFile) -> str:
    """How the ledger names an input: relative to the source root when under it, else its URL
    (so a file given with ``--input`` is not picked up again as new by the scheduler)."""
    full = f"{storage.url}/{f.key}"
    root = rt.source.url.rstrip("/") + "/"
    return full[len(root) :] if full.startswith(root) else full


# ---- the stages --------------------------------------------------------------------------


@dataclass
class _Batch:
    rows: list[Row]
    rejects: list[Reject]
    synthetic: Synthetic | None = None


def _build(
    rt: Runtime,
    request: RunRequest,
    profile: Profile,
    run_id: str,
    inputs: list[tuple[Storage, SourceFile]],
) -> list[Stage]:
    schema = SCHEMAS[profile.dataset]
    syn = request.synthetic

    def ingest(ctx: StageContext) -> StageResult:
        if syn is not None:
            return StageResult(
                records_in=syn.records,
                records_out=syn.records,
                value=_Batch([], [], syn),
                usage={"s3_get_requests": 1, "s3_put_requests": 1},
            )
        rows: list[Row] = []
        rejects: list[Reject] = []
        for storage, f in inputs:
            r, bad = parse(f.key, storage.read(f.key), schema)
            rows += r
            rejects += bad
        n = len(rows) + len(rejects)
        return StageResult(
            records_in=n,
            records_out=len(rows),
            records_rejected=len(rejects),
            value=_Batch(rows, rejects),
            usage={"s3_get_requests": len(inputs), "s3_put_requests": 1},
        )

    def validate_(ctx: StageContext) -> StageResult:
        batch: _Batch = ctx.inputs["ingest"]
        if batch.synthetic is not None:
            s = batch.synthetic
            return StageResult(
                records_in=s.records,
                records_out=s.records - s.rejected,
                records_rejected=s.rejected,
                value=batch,
            )
        good, bad = validate(batch.rows, schema)
        rejects = sorted(batch.rejects + bad, key=lambda r: (r.source, r.line))
        return StageResult(
            records_in=len(batch.rows) + len(batch.rejects),
            records_out=len(good),
            records_rejected=len(rejects),
            value=_Batch(good, rejects),
        )

    def transform_(ctx: StageContext) -> StageResult:
        batch: _Batch = ctx.inputs["validate"]
        if batch.synthetic is not None:
            n = batch.synthetic.records - batch.synthetic.rejected
            return StageResult(records_in=n, records_out=n, value=n)
        rows = transform(batch.rows, schema)
        return StageResult(records_in=len(batch.rows), records_out=len(rows), value=rows)

    def quarantine(ctx: StageContext) -> StageResult:
        batch: _Batch = ctx.inputs["validate"]
        if batch.synthetic is not None:
            n = batch.synthetic.rejected
            return StageResult(
                records_in=n, records_out=n, value=None, usage={"s3_put_requests": 2 if n else 0}
            )
        if not batch.rejects:
            return StageResult(records_in=0, records_out=0, value=None)
        key = f"{request.pipeline}/{run_id}.jsonl"
        body = "".join(
            json.dumps(r.as_dict(), sort_keys=True) + "\n" for r in batch.rejects
        ).encode()
        rt.quarantine.write_atomic(key, body)
        return StageResult(
            records_in=len(batch.rejects),
            records_out=len(batch.rejects),
            value=key,
            usage={"s3_put_requests": 2},
        )

    def load(ctx: StageContext) -> StageResult:
        rows = ctx.inputs["transform"]
        if syn is not None:
            return StageResult(
                records_in=rows, records_out=rows, value=None, usage={"s3_put_requests": 2}
            )
        if not inputs:
            return StageResult(records_in=0, records_out=0, value=None)
        digest = hashlib.sha256(
            "\n".join(sorted(f"{s.url}/{f.key}@{f.etag}" for s, f in inputs)).encode()
        ).hexdigest()[:20]
        key = f"{request.pipeline}/batch-{digest}.jsonl"
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
        rt.output.write_atomic(key, body)
        return StageResult(
            records_in=len(rows), records_out=len(rows), value=key, usage={"s3_put_requests": 2}
        )

    fns = {
        "ingest": (ingest, ()),
        "validate": (validate_, ("ingest",)),
        "transform": (transform_, ("validate",)),
        "quarantine": (quarantine, ("validate",)),
        "load": (load, ("transform",)),
    }

    def wrap(
        name: str, fn: Callable[[StageContext], StageResult]
    ) -> Callable[[StageContext], StageResult]:
        def run(ctx: StageContext) -> StageResult:
            if request.faults is not None:
                request.faults(name, ctx.attempt)
            result = fn(ctx)
            if request.timing is not None:
                result.seconds = request.timing(name, ctx.attempt, result)
            return result

        return run

    return [
        Stage(
            name,
            wrap(name, fn),
            deps,
            max_attempts=rt.section.max_attempts,
            timeout_seconds=rt.section.stage_timeout_seconds,
        )
        for name, (fn, deps) in fns.items()
    ]


# ---- recording: ledger, logs, metrics, cost ---------------------------------------------------


class _Recorder:
    """The executor's observer for one run."""

    def __init__(
        self,
        rt: Runtime,
        request: RunRequest,
        profile: Profile,
        run_id: str,
        correlation_id: str,
        queued_at: datetime,
    ):
        self.rt = rt
        self.req = request
        self.profile = profile
        self.run_id = run_id
        self.cid = correlation_id
        self.queued_at = queued_at
        self.started_at: datetime | None = None
        self.status = states.QUEUED
        self.usage: dict[str, float] = {}
        self.stage_seconds: dict[str, float] = {}
        self.group = log_group(request.pipeline)
        self.stream = log_stream(request.scheduled_for or queued_at, run_id)
        self.counts: dict[str, Any] = {}
        self.bytes_in = 0

    # run row
    def _run_row(self, **extra: Any) -> dict[str, Any]:
        row = {
            "run_id": self.run_id,
            "pipeline": self.req.pipeline,
            "status": self.status,
            "trigger": self.req.trigger,
            "attempt": self.req.attempt,
            "scheduled_for": self.req.scheduled_for,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "correlation_id": self.cid,
        }
        row.update(self.counts)
        row.update(extra)
        return row

    def _log(
        self, at: datetime, level: str, message: str, stage: str | None = None, **fields: Any
    ) -> None:
        size = self.rt.logs.event(
            self.group,
            self.stream,
            at,
            {
                "level": level,
                "correlation_id": self.cid,
                "run_id": self.run_id,
                "pipeline": self.req.pipeline,
                "stage": stage,
                "message": message,
                **fields,
            },
        )
        self.usage["log_bytes"] = self.usage.get("log_bytes", 0) + size

    def _notify(self, kind: str, stage: str, attempt: int, status: str) -> None:
        if self.rt.on_transition is not None:
            self.rt.on_transition(kind, stage, attempt, status)

    def queued(self) -> None:
        self.rt.ledger.write_run(self._run_row())
        self._notify("run", "", 0, states.QUEUED)
        self._log(
            self.queued_at,
            "INFO",
            f"run queued (trigger {self.req.trigger})",
            trigger=self.req.trigger,
            scheduled_for=iso(self.req.scheduled_for),
        )

    def run_state(self, status: str, at: datetime) -> None:
        if status == states.RUNNING and self.started_at is None:
            self.started_at = at
        self.status = status
        self.rt.ledger.write_run(self._run_row())
        self._notify("run", "", 0, status)
        self._log(
            at,
            "WARNING" if status == states.AWAITING_RETRY else "INFO",
            f"run {status.lower().replace('_', ' ')}",
            status=status,
        )

    def step_state(
        self,
        stage: str,
        attempt: int,
        status: str,
        *,
        started_at: datetime,
        ended_at: datetime | None = None,
        result: StageResult | None = None,
        error: BaseException | None = None,
        next_retry_at: datetime | None = None,
    ) -> None:
        row: dict[str, Any] = {
            "run_id": self.run_id,
            "stage": stage,
            "attempt": attempt,
            "status": status,
            "queued_at": started_at,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        if status in (states.FAILED, states.TIMED_OUT) and ended_at is None:
            # the final word on an attempt that was AWAITING_RETRY: keep what it recorded
            prev = next(
                r
                for r in reversed(self.rt.ledger.steps(run_id=self.run_id))
                if r["stage"] == stage and r["attempt"] == attempt
            )
            row.update(
                {
                    k: prev[k]
                    for k in (
                        "queued_at",
                        "started_at",
                        "ended_at",
                        "records_in",
                        "records_out",
                        "records_rejected",
                        "error_type",
                        "error_message",
                        "next_retry_at",
                    )
                }
            )
            self.rt.ledger.write_step(row)
            self._notify("step", stage, attempt, status)
            return
        if result is not None:
            row.update(
                records_in=result.records_in,
                records_out=result.records_out,
                records_rejected=result.records_rejected,
            )
        if error is not None:
            row.update(error_type=error_type(error), error_message=str(error)[:2000])
        row["next_retry_at"] = next_retry_at
        self.rt.ledger.write_step(row)
        self._notify("step", stage, attempt, status)
        if status == states.RUNNING:
            self._log(
                started_at,
                "INFO",
                f"stage {stage} started (attempt {attempt})",
                stage,
                attempt=attempt,
            )
            return
        assert ended_at is not None
        seconds = (ended_at - started_at).total_seconds()
        self.stage_seconds[stage] = seconds
        self._use(stage, seconds, result)
        if status == states.SUCCEEDED:
            self._log(
                ended_at,
                "INFO",
                f"stage {stage} succeeded in {seconds:.1f} s",
                stage,
                attempt=attempt,
                records_in=result.records_in if result else None,
                records_out=result.records_out if result else None,
                records_rejected=result.records_rejected if result else None,
            )
        elif status == states.AWAITING_RETRY:
            self._log(
                ended_at,
                "WARNING",
                f"stage {stage} attempt {attempt} failed ({error_type(error)}: {error}); "
                f"retrying at {iso(next_retry_at)}",
                stage,
                attempt=attempt,
                error_type=error_type(error),
                next_retry_at=iso(next_retry_at),
            )
        else:
            self._log(
                ended_at,
                "ERROR",
                f"stage {stage} {status.lower().replace('_', ' ')} on attempt {attempt}: "
                f"{error_type(error)}: {error}",
                stage,
                attempt=attempt,
                error_type=error_type(error),
            )

    def _use(self, stage: str, seconds: float, result: StageResult | None) -> None:
        u = self.usage
        if stage == "transform":
            dpus = self.req.dpus or self.profile.transform_dpus
            u["glue_dpu_seconds"] = u.get("glue_dpu_seconds", 0) + dpus * max(60.0, seconds)
        else:
            u["compute_vcpu_seconds"] = u.get("compute_vcpu_seconds", 0) + seconds
        if result is not None:
            for k, v in result.usage.items():
                u[k] = u.get(k, 0) + v

    def finish(self, outcome) -> RunResult:
        res = outcome.results
        ingest = res.get("ingest")
        validate_ = res.get("validate")
        load = res.get("load")
        quarantine = res.get("quarantine")
        syn = self.req.synthetic
        records_in = ingest.records_in if ingest else 0
        rejected = validate_.records_rejected if validate_ else 0
        out = load.records_out if load else 0
        bytes_in = syn.bytes if syn else self.bytes_in
        self.status = outcome.status
        datums = 6 + len(self.stage_seconds)
        self.usage["metric_put_requests"] = datums / 1000
        end = outcome.ended_at
        self._log(
            end,
            "INFO" if outcome.status == states.SUCCEEDED else "ERROR",
            f"run {outcome.status.lower().replace('_', ' ')}"
            + (f": {outcome.error_message}" if outcome.error_message else ""),
            status=outcome.status,
            records_in=records_in,
            records_out=out,
            records_rejected=rejected,
            retries=outcome.retries,
        )
        usage = {k: round(v, 6) for k, v in sorted(self.usage.items())}
        cost = cost_usd(usage, self.rt.prices)
        self.counts = {
            "records_in": records_in,
            "records_out": out,
            "records_rejected": rejected,
            "bytes_in": bytes_in,
        }
        self.rt.ledger.write_run(
            self._run_row(
                ended_at=end,
                error_type=outcome.error_type,
                error_message=outcome.error_message,
                usage_json=json.dumps(usage, sort_keys=True),
                cost_usd=cost,
            )
        )
        self._notify("run", "", 0, outcome.status)
        m = self.rt.metrics
        p = self.req.pipeline
        m.add("RecordsIn", records_in, end, unit="Count", pipeline=p)
        m.add("RecordsOut", out, end, unit="Count", pipeline=p)
        m.add("RecordsRejected", rejected, end, unit="Count", pipeline=p)
        m.add(
            "Duration",
            (end - (self.started_at or end)).total_seconds(),
            end,
            unit="Seconds",
            pipeline=p,
        )
        m.add(
            "Failures",
            0 if outcome.status == states.SUCCEEDED else 1,
            end,
            unit="Count",
            pipeline=p,
        )
        m.add("Retries", outcome.retries, end, unit="Count", pipeline=p)
        for stage in sorted(self.stage_seconds):
            m.add(
                "StageDuration",
                self.stage_seconds[stage],
                end,
                unit="Seconds",
                pipeline=p,
                stage=stage,
            )
        return RunResult(
            run_id=self.run_id,
            pipeline=p,
            status=outcome.status,
            correlation_id=self.cid,
            records_in=records_in,
            records_out=out,
            records_rejected=rejected,
            bytes_in=bytes_in,
            retries=outcome.retries,
            cost_usd=cost,
            usage=usage,
            error_type=outcome.error_type,
            error_message=outcome.error_message,
            output_key=load.value if load else None,
            quarantine_key=quarantine.value if quarantine else None,
            started_at=self.started_at,
            ended_at=end,
        )
