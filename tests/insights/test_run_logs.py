"""Why a run has no log lines: each reason, with the exact sentence a user reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

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
        (_run(1, source="stepfunctions"), _pass(),
         "No log lines: the logs collector has no log group for stepfunctions runs (`[collectors.logs.log_groups]`)."),
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
