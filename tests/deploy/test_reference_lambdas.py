"""The Lambda handlers of the reference pipeline on S3 (local moto over HTTP), imported from the
zip ``deploy/package_lambda.py`` builds, so the package is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE, LAKE = "pp-landing", "pp-lake"

ORDERS_CSV = (
    "order_id,customer_id,amount,currency,created_at\n"
    "o-2,c-1,10.50,usd,2026-11-20T10:00:00+00:00\n"
    "o-1,c-2,3.00,EUR,2026-11-20T10:05:00+00:00\n"
    "o-3,c-3,-1,USD,2026-11-20T10:06:00+00:00\n"  # below minimum: rejected
    "o-2,c-1,11.00,USD,2026-11-20T10:09:00+00:00\n"  # same key again: the last one wins
)


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lambda")
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "package_lambda.py"), "--out-dir", str(out)],
                          capture_output=True, text=True, timeout=120, check=True)
    return Path(proc.stdout.strip())


def _invoke(zip_path: Path, handler: str, event: dict) -> tuple[int, dict | str]:
    """Run ``handlers.<handler>(event)`` in a fresh interpreter with only the zip on the path
    (plus boto3, which the Lambda runtime provides); returns (exit status, result or error)."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(zip_path)!r})\n"
        "import handlers, pipeline, pipepulse\n"
        f"assert handlers.__file__.startswith({str(zip_path)!r}), handlers.__file__\n"
        f"assert pipeline.__file__.startswith({str(zip_path)!r}), pipeline.__file__\n"
        f"assert pipepulse.__file__.startswith({str(zip_path)!r}), pipepulse.__file__\n"
        "try:\n"
        f"    print(json.dumps(handlers.{handler}(json.loads(sys.stdin.read()))))\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'errorType': type(exc).__name__, 'errorMessage': str(exc)}))\n"
        "    sys.exit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(event), capture_output=True, text=True,
                          cwd=zip_path.parent, env=env, timeout=120)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def test_zip_is_reproducible_and_holds_the_stage_code(lambda_zip, tmp_path):
    again = subprocess.run([sys.executable, str(ROOT / "deploy" / "package_lambda.py"), "--out-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, check=True)
    assert Path(again.stdout.strip()).name == lambda_zip.name
    assert Path(again.stdout.strip()).read_bytes() == lambda_zip.read_bytes()
    names = zipfile.ZipFile(lambda_zip).namelist()
    assert "handlers.py" in names
    assert {f"pipeline/{p.name}" for p in (ROOT / "pipeline").glob("*.py")} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("store/", "collectors/", "dashboard/"))]


def _buckets():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=LAKE)
    return s3


def test_ingest_then_transform_on_s3(aws, lambda_zip):
    s3 = _buckets()
    s3.put_object(Bucket=SOURCE, Key="incoming/orders/2026-11-20/a.csv", Body=ORDERS_CSV.encode())
    base = {"source_bucket": SOURCE, "source_prefix": "incoming", "lake_bucket": LAKE}

    status, ingested = _invoke(lambda_zip, "ingest", {**base, "run_id": "run-1", "trigger": "schedule", "pipeline": "orders", "key": ""})
    assert status == 0, ingested
    etag = s3.head_object(Bucket=SOURCE, Key="incoming/orders/2026-11-20/a.csv")["ETag"].strip('"')
    assert ingested == {
        "pipeline": "orders",
        "run_id": "run-1",
        "inputs": [{"key": "orders/2026-11-20/a.csv", "etag": etag, "size": len(ORDERS_CSV)}],
        "records_in": 4,
        "records_out": 3,
        "records_rejected": 1,
        "bytes_in": len(ORDERS_CSV),
        "quarantine_key": "quarantine/orders/run-1.jsonl",
    }
    reject = json.loads(s3.get_object(Bucket=LAKE, Key="quarantine/orders/run-1.jsonl")["Body"].read())
    assert (reject["line"], reject["reason"]) == (4, "amount: -1.0 is below 0")

    status, loaded = _invoke(lambda_zip, "transform", {**base, "ingest": ingested})
    assert status == 0, loaded
    assert loaded["records_in"] == 3 and loaded["records_out"] == 2 and loaded["moved"] == 1
    assert loaded["output_key"].startswith("curated/orders/batch-")
    lines = s3.get_object(Bucket=LAKE, Key=loaded["output_key"])["Body"].read().decode().splitlines()
    out = [json.loads(x) for x in lines]
    assert [(r["order_id"], r["amount_cents"], r["currency"]) for r in out] == [("o-1", 300, "EUR"), ("o-2", 1100, "USD")]
    # the input moved out of incoming/, no temporary objects left behind
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=SOURCE).get("Contents", []))
    assert keys == ["processed/orders/2026-11-20/a.csv"]
    lake_keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=LAKE)["Contents"])
    assert lake_keys == sorted([loaded["output_key"], "quarantine/orders/run-1.jsonl"])

    # the next sweep finds nothing: the state machine's Choice skips the transform
    status, empty = _invoke(lambda_zip, "ingest", {**base, "run_id": "run-2", "trigger": "schedule", "pipeline": "orders", "key": ""})
    assert (status, empty["bytes_in"], empty["inputs"], empty["quarantine_key"]) == (0, 0, [], None)


def test_event_trigger_takes_the_pipeline_from_the_key_and_errors_are_typed(aws, lambda_zip):
    s3 = _buckets()
    s3.put_object(Bucket=SOURCE, Key="incoming/partner_feed/f.csv", Body=b"sku,partner,qty,price\nA,p,2,1.5\n")
    base = {"source_bucket": SOURCE, "source_prefix": "incoming", "lake_bucket": LAKE}
    status, ingested = _invoke(lambda_zip, "ingest", {**base, "run_id": "e1", "trigger": "event", "pipeline": "",
                                                     "key": "incoming/partner_feed/f.csv"})
    assert status == 0
    assert (ingested["pipeline"], ingested["records_out"], [i["key"] for i in ingested["inputs"]]) == ("partner_feed", 1, ["partner_feed/f.csv"])

    # the input changed between ingest and transform: refused, not a mix of versions
    s3.put_object(Bucket=SOURCE, Key="incoming/partner_feed/f.csv", Body=b"sku,partner,qty,price\nB,p,1,1\n")
    status, err = _invoke(lambda_zip, "transform", {**base, "ingest": ingested})
    assert (status, err) == (3, {"errorType": "StageError", "errorMessage": "transform: input partner_feed/f.csv changed or vanished after ingest"})

    # a key outside <prefix>/<pipeline>/ cannot name a pipeline
    status, err = _invoke(lambda_zip, "ingest", {**base, "run_id": "e2", "trigger": "event", "pipeline": "", "key": "stray.csv"})
    assert (status, err["errorType"]) == (3, "StageError")
    assert "cannot tell the pipeline from key 'stray.csv'" in err["errorMessage"]

    # a missing bucket is not transient: StageError (goes straight to the Catch)
    status, err = _invoke(lambda_zip, "transform", {**base, "lake_bucket": "no-such-bucket", "ingest": {**ingested, "inputs": []}})
    assert (status, err["errorType"]) == (3, "StageError")
    assert "NoSuchBucket" in err["errorMessage"]
