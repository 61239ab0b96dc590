"""Retries: visible as AWAITING_RETRY and as separate step attempts; backoff with jitter."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import boto3
import pytest

import pipeline.dag as dag
from pipeline import states
from pipeline.run import RunRequest, run_pipeline
from pipepulse import retries
from pipepulse.errors import PipelineError

CSV = "order_id,customer_id,amount,currency,created_at\no1,c1,1.00,USD,2026-11-20T10:00:00Z\n"


def _put(rt):
    rt.source.s3.put_object(
        Bucket=rt.source.bucket, Key=rt.source._k("orders/a.csv"), Body=CSV.encode()
    )


def test_backoff_is_exponential_with_bounded_jitter(monkeypatch):
    monkeypatch.setattr(retries, "PIPELINE_STAGES", retries.Backoff(base=2.0, cap=30.0, jitter=0.5))
    rng = random.Random(3)
    for attempt, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)]:
        delays = [dag.backoff_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= cap * 0.5 and max(delays) <= cap
        assert max(delays) - min(delays) > cap * 0.4  # really jittered
    monkeypatch.setattr(retries, "PIPELINE_STAGES", retries.Backoff(base=2.0, cap=30.0, jitter=0.0))
    assert [dag.backoff_delay(a, rng) for a in (1, 2, 3)] == [2.0, 4.0, 8.0]


def test_transient_failures_are_retried_and_visible(runtime, clock, now):
    _put(runtime)
    seen: list[tuple[str, str, int, str]] = []
    runtime.on_transition = lambda kind, stage, attempt, status: seen.append(
        (kind, stage, attempt, status)
    )

    def flaky(stage, attempt):
        if stage == "transform" and attempt <= 2:
            raise PipelineError(
                "Glue: ConcurrentRunsExceeded", error_type="ConcurrentRunsExceeded", transient=True
            )

    result = run_pipeline(runtime, RunRequest("orders", scheduled_for=now, faults=flaky))
    assert result.status == "SUCCEEDED" and result.retries == 2

    steps = [s for s in runtime.ledger.steps(run_id=result.run_id) if s["stage"] == "transform"]
    assert [(s["attempt"], s["status"], s["error_type"]) for s in steps] == [
        (1, "FAILED", "ConcurrentRunsExceeded"),
        (2, "FAILED", "ConcurrentRunsExceeded"),
        (3, "SUCCEEDED", None),
    ]
    # each failed attempt said when the next one was due, and the next one started then
    for failed, nxt in zip(steps, steps[1:], strict=False):
        assert failed["next_retry_at"] is not None and failed["next_retry_at"] <= nxt["started_at"]
    # the states went through AWAITING_RETRY, for the steps and for the run
    transform = [(a, s) for k, st, a, s in seen if st == "transform"]
    assert transform == [
        (1, "RUNNING"),
        (1, "AWAITING_RETRY"),
        (1, "FAILED"),
        (2, "RUNNING"),
        (2, "AWAITING_RETRY"),
        (2, "FAILED"),
        (3, "RUNNING"),
        (3, "SUCCEEDED"),
    ]
    run_states = [s for k, _, _, s in seen if k == "run"]
    assert run_states == [
        "QUEUED",
        "RUNNING",
        "AWAITING_RETRY",
        "RUNNING",
        "AWAITING_RETRY",
        "RUNNING",
        "SUCCEEDED",
    ]
    # backoff waited on the injected clock: two sleeps within the jitter bounds of 2 s and 4 s
    waits = [
        s for s in clock.sleeps if s >= 0.5
    ]  # (the rest: the clock catching up with real stage time)
    assert len(waits) == 2 and 0.9 <= waits[0] <= 2.0 and 1.9 <= waits[1] <= 4.0

    # the retry count is a metric, and the warnings are in the log
    cw = boto3.client("cloudwatch")
    pts = cw.get_metric_statistics(
        Namespace="Pipepulse/Reference",
        MetricName="Retries",
        Dimensions=[{"Name": "Pipeline", "Value": "orders"}],
        Statistics=["Sum"],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=3600,
    )["Datapoints"]
    assert [p["Sum"] for p in pts] == [2.0]
    events = boto3.client("logs").filter_log_events(
        logGroupName="/pipepulse/reference/orders", filterPattern=result.correlation_id
    )["events"]
    warnings = [
        json.loads(e["message"])
        for e in events
        if json.loads(e["message"])["level"] == "WARNING" and json.loads(e["message"])["stage"]
    ]
    assert [(w["stage"], w["attempt"]) for w in warnings] == [("transform", 1), ("transform", 2)]


def test_permanent_failure_fails_the_run_with_its_error(runtime, now, no_backoff):
    _put(runtime)

    def broken(stage, attempt):
        if stage == "validate":
            raise KeyError("schema registry has no entry for orders v3")

    result = run_pipeline(runtime, RunRequest("orders", scheduled_for=now, faults=broken))
    assert result.status == "FAILED" and result.retries == 0
    run = runtime.ledger.run(result.run_id)
    assert (run["status"], run["error_type"], run["error_message"]) == (
        "FAILED",
        "KeyError",
        "stage validate: 'schema registry has no entry for orders v3'",
    )
    steps = {
        (s["stage"], s["attempt"]): s["status"] for s in runtime.ledger.steps(run_id=result.run_id)
    }
    assert steps == {("ingest", 1): "SUCCEEDED", ("validate", 1): "FAILED"}  # nothing after it ran
    assert runtime.output.list() == []


def test_transient_errors_beyond_max_attempts_fail_the_run(runtime, no_backoff):
    _put(runtime)

    def always(stage, attempt):
        if stage == "load":
            raise PipelineError(
                "503 Service Unavailable", error_type="ServiceUnavailable", transient=True
            )

    result = run_pipeline(runtime, RunRequest("orders", faults=always))
    assert (result.status, result.retries, result.error_type) == ("FAILED", 2, "ServiceUnavailable")
    load = [
        (s["attempt"], s["status"])
        for s in runtime.ledger.steps(run_id=result.run_id)
        if s["stage"] == "load"
    ]
    assert load == [(1, "FAILED"), (2, "FAILED"), (3, "FAILED")]


def test_a_stage_over_its_timeout_is_timed_out_and_retried(runtime, no_backoff):
    _put(runtime)

    def slow_once(stage, attempt, result):
        return 5000.0 if stage == "ingest" and attempt == 1 else 1.0

    result = run_pipeline(runtime, RunRequest("orders", timing=slow_once))
    assert result.status == "SUCCEEDED"
    ingest = [
        (s["attempt"], s["status"], s["error_type"])
        for s in runtime.ledger.steps(run_id=result.run_id)
        if s["stage"] == "ingest"
    ]
    assert ingest == [(1, "TIMED_OUT", "StageTimeout"), (2, "SUCCEEDED", None)]

    def always_slow(stage, attempt, result):
        return 5000.0 if stage == "ingest" else 1.0

    result = run_pipeline(runtime, RunRequest("orders", timing=always_slow))
    assert (result.status, result.error_type) == ("TIMED_OUT", "StageTimeout")


def test_impossible_transitions_are_refused(runtime):
    from pipeline.states import InvalidTransition

    runtime.ledger.write_run(
        {
            "run_id": "r1",
            "pipeline": "p",
            "status": states.QUEUED,
            "trigger": "manual",
            "attempt": 1,
        }
    )
    with pytest.raises(InvalidTransition, match="from QUEUED to SUCCEEDED"):
        runtime.ledger.write_run(
            {
                "run_id": "r1",
                "pipeline": "p",
                "status": states.SUCCEEDED,
                "trigger": "manual",
                "attempt": 1,
            }
        )
