"""Run and step states of the reference pipeline, as a small state machine.

The states are the shared vocabulary (``pipepulse.vocab``); this module adds the reference
pipeline's rules: few state types with a terminal set, and the allowed transitions written down
as data (as Prefect's orchestration policy does). ``AWAITING_RETRY`` is a scheduled state: an attempt failed
with a transient error and another attempt is due at ``next_retry_at``. Every write to the ledger
goes through ``check`` so an impossible transition is a bug caught at once, not a bad row.

A run goes QUEUED -> RUNNING -> (AWAITING_RETRY -> RUNNING)* -> a terminal state. A step row is
one *attempt* of one stage: QUEUED -> RUNNING -> SUCCEEDED | FAILED | TIMED_OUT, or
RUNNING -> AWAITING_RETRY -> FAILED | TIMED_OUT once the next attempt starts (the next attempt is
a new row with ``attempt + 1``).
"""

from __future__ import annotations

from pipepulse.vocab import (
    AWAITING_RETRY,
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    TIMED_OUT,
    TRIGGERS,
)

__all__ = [
    "AWAITING_RETRY",
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "TERMINAL",
    "TIMED_OUT",
    "TRIGGERS",
    "InvalidTransition",
    "check",
]

# from-state -> states it may move to (None: the row does not exist yet).
RUN_TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({QUEUED}),
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({AWAITING_RETRY, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED}),
    AWAITING_RETRY: frozenset({RUNNING, CANCELLED}),
}
STEP_TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({QUEUED, RUNNING}),
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({AWAITING_RETRY, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED}),
    # the attempt's final word once the next attempt has started (or the run gave up)
    AWAITING_RETRY: frozenset({FAILED, TIMED_OUT, CANCELLED}),
}


class InvalidTransition(RuntimeError):
    """A state change the state machine does not allow (a bug in the caller)."""


def check(kind: str, old: str | None, new: str) -> None:
    """Raise InvalidTransition unless ``old -> new`` is allowed for ``kind`` ('run' or 'step')."""
    table = RUN_TRANSITIONS if kind == "run" else STEP_TRANSITIONS
    if old == new:
        return  # an update of the same state (counters, times) is not a transition
    if new not in table.get(old, frozenset()):
        raise InvalidTransition(f"{kind} may not go from {old or '(new)'} to {new}")
