"""The words every layer shares: run statuses and triggers, anomaly statuses and kinds, and the
cost-row marker for "not broken down". Spell them through these names, never as string literals.

Runs move through few states, as a small state machine (``pipeline/states.py`` holds the
transitions the reference pipeline allows)::

    QUEUED -> RUNNING -> (AWAITING_RETRY -> RUNNING)* -> SUCCEEDED | FAILED | TIMED_OUT | CANCELLED

``AWAITING_RETRY`` is a scheduled state: an attempt failed with a transient error and another is
due. The same words describe a run and one attempt of one of its steps. Collectors map each
source's own states onto these (``collectors/stepfunctions.py``, ``collectors/glue.py``).
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "ANOMALY_KINDS",
    "ANOMALY_STATUSES",
    "AWAITING_RETRY",
    "CANCELLED",
    "FAILED",
    "FAILURES",
    "IN_PROGRESS",
    "QUEUED",
    "RUNNING",
    "RUN_STATUSES",
    "SEVERITIES",
    "SUCCEEDED",
    "TERMINAL",
    "TIMED_OUT",
    "TRIGGERS",
]

QUEUED = "QUEUED"
RUNNING = "RUNNING"
AWAITING_RETRY = "AWAITING_RETRY"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
CANCELLED = "CANCELLED"

RUN_STATUSES = (QUEUED, RUNNING, AWAITING_RETRY, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED)  # a run in one of these is over
FAILURES = (FAILED, TIMED_OUT)  # what counts as a failed run (a cancelled one did not fail)
IN_PROGRESS = (QUEUED, RUNNING, AWAITING_RETRY)

# What started a run: a cron schedule, a fixed interval, an event (a file arrived), a person, a retry.
TRIGGERS = ("schedule", "interval", "event", "manual", "retry")

ANOMALY_STATUSES = ("open", "acknowledged", "snoozed", "resolved")
ANOMALY_KINDS = ("metric", "duration", "throughput", "failure_rate", "rejected_rate", "cost")
SEVERITIES = ("low", "medium", "high", "critical")

# A cost dimension a Cost Explorer query did not break down (it allows two GroupBy keys; see
# store/costs.py for the three query shapes stored side by side).
ALL = "*"
