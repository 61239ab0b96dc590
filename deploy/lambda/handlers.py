"""AWS Lambda handlers of the reference pipeline on Step Functions: the same stage code as
``pipeline/`` (``pipeline.records`` parse/validate/transform, ``pipeline.storage`` S3 I/O),
packaged with it by ``deploy/package_lambda.py`` (handlers ``handlers.ingest`` and
``handlers.transform``).

On AWS the state machine (``deploy/statemachine/reference-pipeline.asl.json``) replaces the
local DAG executor: it calls ``ingest`` (read + parse + validate the inputs, quarantine the
rejects) and then ``transform`` (transform + load, then move the inputs out of ``incoming/``),
with retries and a failure path in the ASL rather than in ``pipeline.dag``. Run records come from
Step Functions itself (pipepulse's ``stepfunctions`` collector reads them), so these handlers
write no ledger.

Event (the state machine input, from the EventBridge schedule or the S3 "Object Created" rule)::

    {"run_id": "<execution name>", "trigger": "schedule" | "event",
     "source_bucket": "...", "source_prefix": "incoming",
     "lake_bucket": "...", "pipeline": "orders"          # schedule: sweep incoming/orders/
                          | "key": "incoming/orders/x.csv"}  # event: this one object

Layout (as ``pipeline.config`` documents for the local pipeline): inputs under
``<source_prefix>/<pipeline>/``, output ``curated/<pipeline>/batch-<digest>.jsonl`` (named by the
inputs, so a rerun replaces the same object), rejects ``quarantine/<pipeline>/<run_id>.jsonl``.
Processed inputs move to ``processed/<pipeline>/`` so the next sweep does not load them again.

Errors: a transient failure (throttling, 5xx, timeouts: ``pipeline.dag.is_transient``) is raised
as ``TransientStageError`` and the ASL retries it with backoff; anything else as ``StageError``,
which goes straight to the failure path. Step Functions sees the exception class name as the
error name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipeline.config import profile_for
from pipeline.dag import error_type, is_transient
from pipeline.records import SCHEMAS, parse, validate
from pipeline.records import transform as transform_rows
from pipeline.storage import S3Storage, SourceFile

__all__ = ["StageError", "TransientStageError", "ingest", "transform"]


class StageError(Exception):
    """A stage failed and retrying will not help (bad input, missing bucket, a bug)."""


class TransientStageError(Exception):
    """A stage failed in a way worth retrying (the ASL Retry matches this name)."""


def _fail(stage: str, exc: BaseException) -> Exception:
    kind = TransientStageError if is_transient(exc) else StageError
    return kind(f"{stage}: {error_type(exc)}: {exc}")


def _pipeline_of(event: dict[str, Any], prefix: str) -> str:
    if event.get("pipeline"):
        return str(event["pipeline"])
    key = str(event.get("key") or "")
    rest = key[len(prefix) + 1:] if prefix and key.startswith(prefix + "/") else key
    name, sep, _ = rest.partition("/")
    if not sep or not name:
        raise StageError(f"ingest: cannot tell the pipeline from key {key!r}; expected {prefix}/<pipeline>/<file>")
    return name


def _inputs(source: S3Storage, event: dict[str, Any], pipeline: str) -> list[SourceFile]:
    prefix = f"{pipeline}/"
    files = source.list(prefix)
    if event.get("key"):
        wanted = str(event["key"])[len(source.prefix) + 1:] if source.prefix else str(event["key"])
        files = [f for f in files if f.key == wanted]  # the object may already have been swept
    return files


def ingest(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read, parse and validate the run's inputs; quarantine rejects; return counts and inputs."""
    try:
        src_prefix = str(event.get("source_prefix", "incoming")).strip("/")
        pipeline = _pipeline_of(event, src_prefix)
        run_id = str(event["run_id"])
        source = S3Storage(str(event["source_bucket"]), src_prefix)
        lake = S3Storage(str(event["lake_bucket"]), "quarantine")
        schema = SCHEMAS[profile_for(pipeline).dataset]
        files = _inputs(source, event, pipeline)
        total = good = 0
        rejects = []
        for f in files:
            rows, bad = parse(f.key, source.read(f.key), schema)
            ok, invalid = validate(rows, schema)
            total += len(rows) + len(bad)
            good += len(ok)
            rejects += bad + invalid
        quarantine_key = None
        if rejects:
            rejects.sort(key=lambda r: (r.source, r.line))
            quarantine_key = f"{pipeline}/{run_id}.jsonl"
            body = "".join(json.dumps(r.as_dict(), sort_keys=True) + "\n" for r in rejects).encode()
            lake.write_atomic(quarantine_key, body)
    except (StageError, TransientStageError):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is reported as one of two kinds
        raise _fail("ingest", exc) from exc
    return {
        "pipeline": pipeline,
        "run_id": run_id,
        "inputs": [{"key": f.key, "etag": f.etag, "size": f.size} for f in files],
        "records_in": total,
        "records_out": good,
        "records_rejected": len(rejects),
        "bytes_in": sum(f.size for f in files),
        "quarantine_key": f"quarantine/{quarantine_key}" if quarantine_key else None,
    }


def transform(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Transform and load what ingest accepted; move the inputs to ``processed/``."""
    try:
        src_prefix = str(event.get("source_prefix", "incoming")).strip("/")
        ingested = event["ingest"]
        pipeline = str(ingested["pipeline"])
        source = S3Storage(str(event["source_bucket"]), src_prefix)
        lake = S3Storage(str(event["lake_bucket"]), "curated")
        schema = SCHEMAS[profile_for(pipeline).dataset]
        current = {f.key: f for f in source.list(f"{pipeline}/")}
        rows = []
        for item in ingested["inputs"]:
            f = current.get(item["key"])
            if f is None or f.etag != item["etag"]:
                # changed or moved since ingest: never load a mix of versions
                raise StageError(f"transform: input {item['key']} changed or vanished after ingest")
            parsed, _ = parse(f.key, source.read(f.key), schema)
            ok, _ = validate(parsed, schema)
            rows += ok
        out = transform_rows(rows, schema)
        digest = hashlib.sha256(
            "\n".join(sorted(f"{source.url}/{i['key']}@{i['etag']}" for i in ingested["inputs"])).encode()
        ).hexdigest()[:20]
        key = f"{pipeline}/batch-{digest}.jsonl"
        lake.write_atomic(key, "".join(json.dumps(r, sort_keys=True) + "\n" for r in out).encode())
        processed = S3Storage(source.bucket, "processed", client=source.s3)
        for item in ingested["inputs"]:
            processed.write_atomic(item["key"], source.read(item["key"]))
            source.delete(item["key"])
    except (StageError, TransientStageError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise _fail("transform", exc) from exc
    return {
        "pipeline": pipeline,
        "run_id": ingested["run_id"],
        "records_in": len(rows),
        "records_out": len(out),
        "output_key": f"curated/{key}",
        "moved": len(ingested["inputs"]),
    }
