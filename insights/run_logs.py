"""Why a run shows no log lines, said plainly: the limits of the log source, not an empty table.

``no_log_lines(run, looked_pass, demo=...)`` takes the run (a ``runs`` row) and the first succeeded
pass of the logs collector that started when or after the run was stored (the pass that looked
for its lines: a ``collector_runs`` row with ``started_at`` and ``details``, the JSON with
``lookback_days`` and ``log_groups`` that ``collectors/logs.py`` records, keyed
``source:pipeline``, or ``glue:pipeline:group`` for each Glue group; None when there is no
such pass) and returns a ``NoLogLines``: the sentence, and the command that would fill the gap
when there is one. The first reason that holds wins:

1. the run is not failed or timed out: only those runs' error and warning lines are kept;
2. no logs pass has run since the run was stored: run the logs collector;
3. the run has no correlation id (the collector finds lines by it);
4. it ended longer before the pass than the collector's ``lookback_days``;
5. the pass recorded no log group for the run: a source without a default group (Airflow) needs
   one in ``[collectors.logs.log_groups]``; a source with one (reference, Glue, Step Functions) was
   not read by that pass (it reads at most ``max_runs`` runs); a Step Functions run whose state
   machine has no execution log (the group recorded as null); its log groups (Glue: every group
   of ``glue_groups``) did not exist; or they keep events fewer days (their retention) than the
   run's age at the pass;
6. it ended more than 14 days before the pass: CloudWatch Logs takes no older events, so a
   history written after the fact (a backfill, as the demo's) has none; ``demo=True`` says so
   of the demo;
7. otherwise the group held no error or warning line with the run's correlation id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["CLOUDWATCH_LOGS_MAX_EVENT_AGE", "LOGGED_STATUSES", "NoLogLines", "no_log_lines"]

# PutLogEvents drops events older than this (and the ones more than 2 hours ahead).
CLOUDWATCH_LOGS_MAX_EVENT_AGE = timedelta(days=14)
LOGGED_STATUSES = ("FAILED", "TIMED_OUT")
COLLECT_LOGS = "pipepulse collect --source logs"
# run sources the logs collector reads without a ``[collectors.logs.log_groups]`` entry
DEFAULT_GROUP_SOURCES = ("reference", "glue", "stepfunctions")


@dataclass(frozen=True)
class NoLogLines:
    """Why a run has no stored log lines; ``command`` fills the gap, when one can."""

    reason: str
    command: str | None = None


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"


def _details(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _entries(groups: dict[str, Any], source: Any, pipeline: Any) -> list[dict[str, Any]]:
    """What the pass recorded of the run's log groups: the ``source:pipeline`` entry, or for Glue
    read from ``glue_groups`` one ``glue:pipeline:group`` entry per group; [] when none."""
    one = groups.get(f"{source}:{pipeline}")
    if isinstance(one, dict):
        return [one]
    return [e for k, e in groups.items() if isinstance(e, dict) and k == f"{source}:{pipeline}:{e.get('group')}"]


def _names(entries: list[dict[str, Any]]) -> str:
    names = [str(e.get("group")) for e in entries]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def no_log_lines(run: Mapping[str, Any], looked_pass: Mapping[str, Any] | None, *, demo: bool = False) -> NoLogLines:
    """The reason ``run`` has no log lines (see the module docstring for the order)."""
    status = run.get("status")
    if status not in LOGGED_STATUSES:
        return NoLogLines(f"No log lines: pipepulse keeps the error and warning lines of failed and timed-out runs, and this run is {status}.")
    if looked_pass is None:
        return NoLogLines("No log lines stored for this run: the logs collector has not looked for them since the run was stored", COLLECT_LOGS)
    looked: datetime = looked_pass["started_at"]
    details = _details(looked_pass.get("details"))
    if not run.get("correlation_id"):
        return NoLogLines("No log lines: this run has no correlation id, which the logs collector finds its lines by.")
    groups = details.get("log_groups")  # absent from passes recorded before it was kept
    source = run.get("source")
    entries = _entries(groups, source, run.get("pipeline")) if isinstance(groups, dict) else None
    ended: datetime = run.get("ended_at") or run.get("started_at") or looked  # no times: age 0
    age = looked - ended
    lookback = details.get("lookback_days")
    if lookback and age > timedelta(days=lookback):
        return NoLogLines(
            f"No log lines: this run ended on {_when(ended)}, {_days(age)} before the logs collector looked ({_when(looked)}), "
            f"and it reads the lines of runs that ended in the last {lookback} days (`lookback_days` in `[collectors.logs]`)."
        )
    if entries == [] and source not in DEFAULT_GROUP_SOURCES:
        return NoLogLines(f"No log lines: the logs collector has no log group for {source} runs (`[collectors.logs.log_groups]`).")
    if entries == []:
        return NoLogLines(
            f"No log lines: the logs collector's pass of {_when(looked)} did not read this run (a pass reads at most "
            "`max_runs` failed runs, in `[collectors.logs]`; the others wait for the next pass).", COLLECT_LOGS)
    if entries and all(e.get("group") is None for e in entries):
        return NoLogLines(
            f"No log lines: this execution's state machine had no execution log when the logs collector looked ({_when(looked)}), "
            "so there were no failure records to read. Turn on its logging (`loggingConfiguration`: level ERROR or ALL, "
            "and a CloudWatch Logs group as its destination) for the failures of later executions to be read."
        )
    existing = [e for e in entries or () if e.get("exists", True)]
    if entries and not existing:
        missing = _names(entries)
        hint = (" If the jobs log to other groups (continuous logging to a group of their own), list those in "
                "`glue_groups` in `[collectors.logs]`.") if source == "glue" else ""
        return NoLogLines(
            f"No log lines: the log group{'s' if len(entries) > 1 else ''} {missing} did not exist when the logs collector "
            f"looked ({_when(looked)}).{hint}")
    name = _names(existing) if existing else "its log group"
    days = [int(e["retention_days"]) for e in existing if e.get("retention_days")]
    kept = max(days) if existing and len(days) == len(existing) else None  # None: one of them keeps events forever
    if kept and age > timedelta(days=kept):
        keeps = (f"its log group {name} keeps events {kept} days (its retention setting)" if len(existing) == 1 else
                 f"its log groups {name} keep events at most {kept} days (their retention settings)")
        return NoLogLines(
            f"No log lines: this run ended on {_when(ended)}, {_days(age)} before the logs collector looked ({_when(looked)}), "
            f"and {keeps}."
        )
    if age > CLOUDWATCH_LOGS_MAX_EVENT_AGE:
        if demo:
            return NoLogLines(
                f"No log lines: this run ended on {_when(ended)}, {_days(age)} before the demo was built ({_when(looked)}), "
                "older than the 14 days of events CloudWatch Logs accepts, so the demo wrote none for it. "
                "The demo's failed runs of its last 14 days have their log lines."
            )
        return NoLogLines(
            f"No log lines: no error or warning line of this run was found in {name}. It ended on {_when(ended)}, "
            f"{_days(age)} before the logs collector looked ({_when(looked)}); CloudWatch Logs accepts events at most "
            "14 days old, so lines written after the fact (as a backfill writes them) were dropped."
        )
    return NoLogLines(f"No log lines: {name} held no error or warning line with this run's correlation id when the logs collector looked ({_when(looked)}).")
