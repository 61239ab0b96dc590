"""Why a run has no log lines: each reason, with the exact sentence a user reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from insights.run_logs import COLLECT_LOGS, NoLogLines, no_log_lines

LOOKED = datetime(2026, 12, 5, 10, 5, tzinfo=UTC)
GROUP = "/pipepulse/reference/orders"


def _run(ended_days_ago: float, **kw):
    ended = LOOKED - timedelta(days=ended_days_ago)
    return {"run_id": "reference:r1", "source": "reference", "pipeline": "orders", "status": "FAILED", "correlation_id": "c-1",
            "started_at": ended - timedelta(minutes=10), "ended_at": ended, "updated_at": LOOKED, **kw}


def _pass(lookback=92, retention=None, exists=True, groups=True):
    details = {"lookback_days": lookback}
    if groups:
        details["log_groups"] = {"reference:orders": {"group": GROUP, "retention_days": retention, "exists": exists}}
    return {"started_at": LOOKED, "status": "succeeded", "details": json.dumps(details)}


def test_a_run_that_did_not_fail_keeps_no_lines():
    assert no_log_lines(_run(1, status="SUCCEEDED"), _pass()) == NoLogLines(
        "No log lines: pipepulse keeps the error and warning lines of failed and timed-out runs, and this run is SUCCEEDED.")


def test_no_pass_since_the_run_was_stored_says_what_to_run():
    assert no_log_lines(_run(1), None) == NoLogLines(
        "No log lines stored for this run: the logs collector has not looked for them since the run was stored", COLLECT_LOGS)


def test_a_run_older_than_the_collectors_lookback():
    assert no_log_lines(_run(41, ended_at=LOOKED - timedelta(days=41, hours=1)), _pass(lookback=14)).reason == (
        "No log lines: this run ended on 2026-10-25 09:05 UTC, 41 days before the logs collector looked (2026-12-05 10:05 UTC), "
        "and it reads the lines of runs that ended in the last 14 days (`lookback_days` in `[collectors.logs]`).")


def test_a_run_older_than_its_groups_retention():
    assert no_log_lines(_run(9), _pass(retention=7)).reason == (
        "No log lines: this run ended on 2026-11-26 10:05 UTC, 9 days before the logs collector looked (2026-12-05 10:05 UTC), "
        "and its log group /pipepulse/reference/orders keeps events 7 days (its retention setting).")
    # inside the retention: the group simply held nothing of the run
    assert no_log_lines(_run(5), _pass(retention=7)).reason == (
        "No log lines: /pipepulse/reference/orders held no error or warning line with this run's correlation id when the "
        "logs collector looked (2026-12-05 10:05 UTC).")


def test_a_demo_run_older_than_the_14_days_cloudwatch_logs_accepts():
    assert no_log_lines(_run(41), _pass(), demo=True).reason == (
        "No log lines: this run ended on 2026-10-25 10:05 UTC, 41 days before the demo was built (2026-12-05 10:05 UTC), "
        "older than the 14 days of events CloudWatch Logs accepts, so the demo wrote none for it. "
        "The demo's failed runs of its last 14 days have their log lines.")
    # outside the demo: the same limit, said of any history written after the fact
    assert no_log_lines(_run(15), _pass()).reason == (
        "No log lines: no error or warning line of this run was found in /pipepulse/reference/orders. It ended on "
        "2026-11-20 10:05 UTC, 15 days before the logs collector looked (2026-12-05 10:05 UTC); CloudWatch Logs accepts "
        "events at most 14 days old, so lines written after the fact (as a backfill writes them) were dropped.")
    # 13 days old: inside the 14 days, so not that
    assert "held no error or warning line" in no_log_lines(_run(13), _pass(), demo=True).reason


@pytest.mark.parametrize(
    ("run", "looked", "expected"),
    [
        (_run(1, correlation_id=None), _pass(), "No log lines: this run has no correlation id, which the logs collector finds its lines by."),
        # a source without a default group, and none configured
        (_run(1, source="airflow"), _pass(),
         "No log lines: the logs collector has no log group for airflow runs (`[collectors.logs.log_groups]`)."),
        (_run(1), _pass(exists=False),
         "No log lines: the log group /pipepulse/reference/orders did not exist when the logs collector looked (2026-12-05 10:05 UTC)."),
        # a pass recorded before passes kept their groups: no claim about the group
        (_run(1), _pass(groups=False),
         "No log lines: its log group held no error or warning line with this run's correlation id when the logs collector "
         "looked (2026-12-05 10:05 UTC)."),
        (_run(0.5), _pass(),
         "No log lines: /pipepulse/reference/orders held no error or warning line with this run's correlation id when the "
         "logs collector looked (2026-12-05 10:05 UTC)."),
    ],
)
def test_the_other_reasons(run, looked, expected):
    assert no_log_lines(run, looked) == NoLogLines(expected)


def test_a_pass_that_did_not_read_a_run_of_a_source_read_by_default():
    # Step Functions runs are read from their machine's execution log without any configuration:
    # no entry means that pass left the run for a later one, not that a group is missing
    assert no_log_lines(_run(1, source="stepfunctions"), _pass()) == NoLogLines(
        "No log lines: the logs collector's pass of 2026-12-05 10:05 UTC did not read this run (a pass reads at most "
        "`max_runs` failed runs, in `[collectors.logs]`; the others wait for the next pass).", COLLECT_LOGS)


def test_glue_groups_are_looked_up_one_by_one():
    def glue_pass(**groups):
        entries = {f"glue:glue_nightly:{g}": {"group": g, **v} for g, v in groups.items()}
        return {"started_at": LOOKED, "status": "succeeded", "details": json.dumps({"lookback_days": 14, "log_groups": entries})}

    run = _run(9, run_id="glue:nightly:jr_1", source="glue", pipeline="glue_nightly", correlation_id="jr_1")
    error, output = "/aws-glue/jobs/error", "/aws-glue/jobs/output"
    # one group exists: its retention decides
    assert no_log_lines(run, glue_pass(**{error: {"exists": False, "retention_days": None},
                                          output: {"exists": True, "retention_days": 7}})).reason == (
        "No log lines: this run ended on 2026-11-26 10:05 UTC, 9 days before the logs collector looked (2026-12-05 10:05 UTC), "
        "and its log group /aws-glue/jobs/output keeps events 7 days (its retention setting).")
    # both exist: the longer retention decides; one that never expires rules retention out
    assert no_log_lines(run, glue_pass(**{error: {"exists": True, "retention_days": 5},
                                          output: {"exists": True, "retention_days": 7}})).reason == (
        "No log lines: this run ended on 2026-11-26 10:05 UTC, 9 days before the logs collector looked (2026-12-05 10:05 UTC), "
        "and its log groups /aws-glue/jobs/error and /aws-glue/jobs/output keep events at most 7 days (their retention settings).")
    assert no_log_lines(run, glue_pass(**{error: {"exists": True, "retention_days": 5},
                                          output: {"exists": True, "retention_days": None}})).reason == (
        "No log lines: /aws-glue/jobs/error and /aws-glue/jobs/output held no error or warning line with this run's "
        "correlation id when the logs collector looked (2026-12-05 10:05 UTC).")


def test_each_sources_reason_from_a_real_logs_pass(aws, make_settings, engine, now):
    """The details a real logs pass records (collectors/logs.py), read back the way the run
    detail page reads them: Glue without its groups, a state machine without an execution log,
    an Airflow source without a group, a reference group that does not exist."""
    from collectors.base import RunRow
    from collectors.runner import collect
    from store.collecting import log_read_at
    from store.runs import run_detail
    from store.schema import runs
    from store.state import first_pass_since
    from store.writes import upsert

    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="customer-etl", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    execution = machine.replace(":stateMachine:", ":execution:") + ":run-1"
    start = now - timedelta(hours=30)
    failed = {"status": "FAILED", "started_at": start, "ended_at": start + timedelta(minutes=10)}
    stored = [
        RunRow(run_id="glue:nightly:jr_1", pipeline="glue_nightly", source="glue", correlation_id="jr_1", **failed),
        RunRow(run_id=f"stepfunctions:{execution}", pipeline="sfn_customer_etl", source="stepfunctions", correlation_id="run-1", **failed),
        RunRow(run_id="airflow:pp:manual_1", pipeline="pp_fail", source="airflow", correlation_id="manual_1", **failed),
        RunRow(run_id="reference:r1", pipeline="orders", source="reference", correlation_id="c-r1", **failed),
    ]
    with engine.begin() as conn:
        upsert(conn, runs, [r.as_row() for r in stored], now=now)
    [p] = collect(make_settings('[collectors]\nsources = ["logs"]\n'), engine, now=now)
    assert p.status == "succeeded", p.error

    def reason(run_id):
        with engine.connect() as conn:
            run = dict(run_detail(conn, run_id).run)
            looked = first_pass_since(conn, "logs", log_read_at(conn, run_id) or run["updated_at"])
        return no_log_lines(run, looked)

    when = f"{now:%Y-%m-%d %H:%M} UTC"
    assert reason("glue:nightly:jr_1") == NoLogLines(
        f"No log lines: the log groups /aws-glue/jobs/error and /aws-glue/jobs/output did not exist when the logs collector "
        f"looked ({when}). If the jobs log to other groups (continuous logging to a group of their own), list those in "
        "`glue_groups` in `[collectors.logs]`.")
    assert reason(f"stepfunctions:{execution}") == NoLogLines(
        f"No log lines: this execution's state machine had no execution log when the logs collector looked ({when}), "
        "so there were no failure records to read. Turn on its logging (`loggingConfiguration`: level ERROR or ALL, "
        "and a CloudWatch Logs group as its destination) for the failures of later executions to be read.")
    assert reason("airflow:pp:manual_1") == NoLogLines(
        "No log lines: the logs collector has no log group for airflow runs (`[collectors.logs.log_groups]`).")
    assert reason("reference:r1") == NoLogLines(
        f"No log lines: the log group /pipepulse/reference/orders did not exist when the logs collector looked ({when}).")
