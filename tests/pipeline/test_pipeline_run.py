"""One run end to end over real HTTP: S3 in, quarantine, load, ledger, metrics, logs, cost."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from pipeline import states
from pipeline.cost import cost_usd
from pipeline.emit import NAMESPACE
from pipeline.run import RunRequest, resolve_inputs, run_pipeline
from pipepulse.errors import InputError, PipelineError

ORDERS = (
    "order_id,customer_id,amount,currency,created_at\n"
    "o1,c1,10.50,usd,2026-11-20T10:00:00Z\n"
    "o2,c2,abc,USD,2026-11-20T10:01:00Z\n"
    "o3,c3,7.25,EUR,2026-11-20T10:02:00Z\n"
    "o4,c4,3.00\n"
    "o5,c5,-1,USD,2026-11-20T10:03:00Z\n"
    "o6,c6,99.99,GBP,yesterday\n"
    "o1,c1,11.00,USD,2026-11-20T10:05:00Z\n"
)


def _put(rt, key, body):
    rt.source.s3.put_object(Bucket=rt.source.bucket, Key=rt.source._k(key), Body=body.encode())


def test_run_end_to_end_quarantines_bad_rows_and_loads_good_ones(runtime, now):
    _put(runtime, "orders/2026/11/20/batch-1.csv", ORDERS)
    result = run_pipeline(runtime, RunRequest("orders", trigger="manual", scheduled_for=now))

    assert result.status == states.SUCCEEDED
    assert (result.records_in, result.records_out, result.records_rejected) == (7, 2, 4)
    # quarantine: every bad row with its line number and reason
    rejects = [
        json.loads(x) for x in runtime.quarantine.read(result.quarantine_key).decode().splitlines()
    ]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (3, "amount: 'abc' is not a number"),
        (5, "expected 5 fields, got 3"),
        (6, "amount: -1.0 is below 0"),
        (7, "created_at: 'yesterday' is not an ISO-8601 time"),
    ]
    assert {r["source"] for r in rejects} == {"orders/2026/11/20/batch-1.csv"}
    # load: good rows, deduplicated on the key (the later o1 wins), derived fields added
    loaded = [json.loads(x) for x in runtime.output.read(result.output_key).decode().splitlines()]
    assert [(r["order_id"], r["amount_cents"], r["currency"]) for r in loaded] == [
        ("o1", 1100, "USD"),
        ("o3", 725, "EUR"),
    ]

    # the ledger: one run row, one step row per stage, seq strictly increasing
    run = runtime.ledger.run(result.run_id)
    assert run["status"] == "SUCCEEDED" and run["trigger"] == "manual" and run["attempt"] == 1
    assert (run["records_in"], run["records_out"], run["records_rejected"]) == (7, 2, 4)
    assert run["bytes_in"] == len(ORDERS)
    assert run["scheduled_for"] == now.isoformat() and run["queued_at"].endswith("+00:00")
    steps = runtime.ledger.steps(run_id=result.run_id)
    assert sorted((s["stage"], s["attempt"], s["status"]) for s in steps) == [
        ("ingest", 1, "SUCCEEDED"),
        ("load", 1, "SUCCEEDED"),
        ("quarantine", 1, "SUCCEEDED"),
        ("transform", 1, "SUCCEEDED"),
        ("validate", 1, "SUCCEEDED"),
    ]
    by_stage = {s["stage"]: s for s in steps}
    assert (
        by_stage["validate"]["records_in"],
        by_stage["validate"]["records_out"],
        by_stage["validate"]["records_rejected"],
    ) == (7, 3, 4)
    # transform and quarantine are independent branches: same wave, same start
    assert by_stage["transform"]["started_at"] == by_stage["quarantine"]["started_at"]
    seqs = [r["seq"] for r in runtime.ledger.runs()] + [s["seq"] for s in steps]
    assert len(set(seqs)) == len(seqs) and run["seq"] == max(seqs)

    # cost = usage x prices, stored with the run
    usage = json.loads(run["usage_json"])
    assert usage["glue_dpu_seconds"] == 600.0  # 10 DPUs x the one-minute minimum
    assert usage["s3_get_requests"] == 1
    assert run["cost_usd"] == cost_usd(usage, runtime.prices) == result.cost_usd
    assert run["cost_usd"] > 600 / 3600 * 0.44

    # metrics, readable back from CloudWatch
    cw = boto3.client("cloudwatch")
    window = {
        "StartTime": now - timedelta(hours=1),
        "EndTime": now + timedelta(hours=1),
        "Period": 3600,
    }

    def total(name, stage=None):
        dims = [{"Name": "Pipeline", "Value": "orders"}] + (
            [{"Name": "Stage", "Value": stage}] if stage else []
        )
        points = cw.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=name,
            Dimensions=dims,
            Statistics=["Sum", "SampleCount"],
            **window,
        )["Datapoints"]
        return sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)

    assert total("RecordsIn") == (7.0, 1.0)
    assert total("RecordsOut") == (2.0, 1.0)
    assert total("RecordsRejected") == (4.0, 1.0)
    assert total("Failures") == (0.0, 1.0)
    assert total("Retries") == (0.0, 1.0)
    assert total("StageDuration", "load")[1] == 1.0
    assert total("Duration")[1] == 1.0

    # logs, with the correlation id on every event
    logs = boto3.client("logs")
    events = logs.filter_log_events(
        logGroupName="/pipepulse/reference/orders", filterPattern=result.correlation_id
    )["events"]
    bodies = [json.loads(e["message"]) for e in events]
    assert len(bodies) == 13  # queued, running, 5 x (started, succeeded), run succeeded
    assert {b["correlation_id"] for b in bodies} == {result.correlation_id}
    assert {b["run_id"] for b in bodies} == {result.run_id}
    assert {e["logStreamName"] for e in events} == {f"{now:%Y/%m/%d}/{result.run_id}"}
    assert bodies[-1]["message"] == "run succeeded"

    # the files are remembered: a second run finds nothing new
    again = run_pipeline(runtime, RunRequest("orders"))
    assert (again.status, again.records_in) == ("SUCCEEDED", 0)


def test_rerun_of_the_same_input_gives_the_same_output_without_duplicates(runtime):
    _put(runtime, "orders/a.csv", ORDERS)
    inputs = resolve_inputs("s3://landing/incoming/orders/a.csv")
    first = run_pipeline(runtime, RunRequest("orders", inputs=inputs))
    body = runtime.output.read(first.output_key)
    second = run_pipeline(
        runtime, RunRequest("orders", inputs=resolve_inputs("s3://landing/incoming/orders/"))
    )
    assert second.output_key == first.output_key
    assert runtime.output.read(second.output_key) == body
    assert [f.key for f in runtime.output.list()] == [
        first.output_key
    ]  # one object, no temp left behind


def test_failed_load_leaves_nothing_half_written(runtime, monkeypatch, no_backoff):
    _put(runtime, "orders/a.csv", ORDERS)

    temp_seen: list[list[str]] = []

    def broken_promote(tmp, key):
        listing = runtime.output.s3.list_objects_v2(Bucket="lake", Prefix="curated/")
        temp_seen.append([o["Key"] for o in listing.get("Contents", [])])
        raise PipelineError("copy to the lake failed", error_type="CopyFailed")

    monkeypatch.setattr(runtime.output, "_promote", broken_promote)
    result = run_pipeline(runtime, RunRequest("orders"))
    assert result.status == "FAILED"
    assert (result.error_type, result.error_message) == (
        "CopyFailed",
        "stage load: copy to the lake failed",
    )
    # the data was written to a temporary key, then the failure removed it: nothing is left
    assert len(temp_seen) == 1 and all(
        len(keys) == 1 and keys[0].startswith("curated/_tmp/") for keys in temp_seen
    )
    listing = runtime.output.s3.list_objects_v2(Bucket="lake", Prefix="curated/")
    assert listing.get("KeyCount") == 0
    # the input was not marked as loaded: the next run picks it up again
    monkeypatch.undo()
    retry = run_pipeline(runtime, RunRequest("orders", trigger="retry", attempt=2))
    assert (retry.status, retry.records_out) == ("SUCCEEDED", 2)


def test_local_folder_input_and_output(aws, tmp_path, section, clock):
    import random

    from pipeline.config import PipelineSection
    from pipeline.run import Runtime
    from pipepulse.settings import Prices

    src = tmp_path / "in" / "clickstream"
    src.mkdir(parents=True)
    (src / "events.jsonl").write_text(
        '{"event_id": "e1", "session_id": "s1", "event_type": "view", "url": "/p/1?x=1", "ts": "2026-11-20T10:00:00Z"}\n'
        "{not json\n"
        '["a list"]\n'
        '{"event_id": "e2", "session_id": "s1", "event_type": "hover", "url": "/p/2", "ts": "2026-11-20T10:00:01Z"}\n'
    )
    sec = PipelineSection(
        ledger_path=tmp_path / "l.db",
        source=str(tmp_path / "in"),
        output=str(tmp_path / "out"),
        quarantine=str(tmp_path / "q"),
    )
    rt = Runtime.create(sec, Prices(), clock=clock, sleep=clock.sleep, rng=random.Random(1))
    try:
        result = run_pipeline(rt, RunRequest("clickstream"))
    finally:
        rt.close()
    assert (result.status, result.records_in, result.records_out, result.records_rejected) == (
        "SUCCEEDED",
        4,
        1,
        3,
    )
    out = (tmp_path / "out" / result.output_key).read_text().splitlines()
    assert [json.loads(x)["url"] for x in out] == ["/p/1"]
    reasons = [
        (json.loads(x)["line"], json.loads(x)["reason"])
        for x in (tmp_path / "q" / result.quarantine_key).read_text().splitlines()
    ]
    assert reasons == [
        (2, "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        (3, "expected a JSON object, got list"),
        (4, "event_type: 'hover' is not one of view, click, add_to_cart, purchase"),
    ]
    assert not (tmp_path / "out" / "_tmp").exists()


def test_missing_input_is_named():
    with pytest.raises(InputError, match="no such file or folder"):
        resolve_inputs("/nonexistent/orders.csv")


def test_a_file_run_by_hand_is_not_new_to_the_scheduler(runtime):
    _put(runtime, "orders/a.csv", ORDERS)
    run_pipeline(
        runtime, RunRequest("orders", inputs=resolve_inputs("s3://landing/incoming/orders/a.csv"))
    )
    assert runtime.ledger.loaded_inputs("orders") == {
        ("orders/a.csv", runtime.source.list("orders/")[0].etag)
    }
    assert run_pipeline(runtime, RunRequest("orders")).records_in == 0
