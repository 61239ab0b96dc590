"""Is each pipeline's data fresh? Checked against the schedule a pipeline promises.

Three kinds of promise (from ``PipelineConfig``):

* **cron schedule** (``schedule = "0 6 * * *"``): the latest slot at or before ``now`` is
  judged. Its run succeeded within the SLA -> ``on_time``; succeeded after the SLA, or still
  running past it -> ``late``; no run at all and the SLA has passed -> ``missed`` ("the 06:00
  run has not happened (due 06:00 UTC, 2 h 15 min late)"). While a slot is still inside its
  SLA the slot before it is judged instead, so a pipeline that missed its previous run does not
  look fine just because a new slot has begun.
* **interval** (``interval_minutes = 60``): the next run is due ``interval`` after the start
  of the last successful run; past ``due + SLA`` it is ``late`` when a run is in progress and
  ``missed`` otherwise.
* **event-triggered** (neither): ``late`` once the last success is older than the SLA,
  ``missed`` once it is older than twice the SLA (a file may simply not have arrived yet).

A run fills a cron slot when its ``scheduled_for`` equals the slot or, without
``scheduled_for``, when it started inside ``[slot, next slot)``. Runs are the ``runs`` table's
columns (pipeline, status, scheduled_for, started_at, ended_at).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import pandas as pd

from pipepulse.cron import CronSchedule
from pipepulse.settings import PipelineConfig
from pipepulse.vocab import IN_PROGRESS, SUCCEEDED

__all__ = ["Freshness", "check_freshness", "format_duration", "freshness_table"]


@dataclass(frozen=True)
class Freshness:
    """The freshness verdict for one pipeline at ``now``."""

    pipeline: str
    state: str  # on_time | late | missed
    kind: str  # schedule | interval | event
    due_at: datetime | None  # the slot (or due time) judged
    deadline: datetime | None  # due_at + SLA
    last_success_at: datetime | None  # end of the last successful run
    late_by: timedelta | None  # now - due_at when late or missed
    message: str


def format_duration(delta: timedelta) -> str:
    """``2 h 15 min``, ``45 min``, ``3 d 4 h``: coarse on purpose, for sentences."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def check_freshness(config: PipelineConfig, runs: pd.DataFrame, *, now: datetime) -> Freshness:
    """Judge one pipeline; ``runs`` may hold other pipelines' runs too (they are ignored)."""
    mine = _runs_of(runs, config.name, now)
    sla = timedelta(seconds=config.freshness_sla_seconds)
    ok = mine[mine["status"] == SUCCEEDED]
    last_success = ok["ended_at"].max() if not ok.empty else None
    last_success = None if pd.isna(last_success) else last_success.to_pydatetime()
    if config.schedule:
        return _scheduled(config, mine, sla, last_success, now)
    if config.interval_seconds:
        return _interval(config, mine, sla, last_success, now)
    return _event(config, mine, sla, last_success, now)


def freshness_table(configs: Iterable[PipelineConfig], runs: pd.DataFrame, *, now: datetime) -> pd.DataFrame:
    """One row per pipeline: the fields of ``Freshness``."""
    rows = [asdict(check_freshness(c, runs, now=now)) for c in configs]
    return pd.DataFrame(rows, columns=list(Freshness.__dataclass_fields__))


# ---- the three kinds ---------------------------------------------------------------------------


def _scheduled(config, mine, sla, last_success, now) -> Freshness:
    cron = CronSchedule(config.schedule)
    latest = cron.previous_at_or_before(now)
    # The newest slot whose deadline has passed decides; slots still inside their SLA (there
    # may be several when the SLA is longer than the schedule's step) cannot be late yet.
    judged = cron.previous_at_or_before(now - sla)
    # ... unless a newer slot has already succeeded: then the data is fresh from that run.
    slot, steps = latest, 0
    while slot > judged and steps < 1000:
        if (_slot_runs(mine, cron, slot)["status"] == SUCCEEDED).any():
            return _judge_slot(config, mine, cron, slot, sla, last_success, now)
        slot = cron.previous_at_or_before(slot - timedelta(seconds=1))
        steps += 1
    verdict = _judge_slot(config, mine, cron, judged, sla, last_success, now)
    if verdict.state != "on_time" or latest <= judged:
        return verdict
    cur = _slot_runs(mine, cron, latest)
    waiting = "is running" if cur["status"].isin(IN_PROGRESS).any() else "is due"
    return Freshness(
        config.name, "on_time", "schedule", latest, latest + sla, last_success, None,
        f"the {_hhmm(latest)} run {waiting} (SLA until {_hhmm(latest + sla)} UTC)",
    )


def _judge_slot(config, mine, cron, slot, sla, last_success, now) -> Freshness:
    deadline = slot + sla
    runs = _slot_runs(mine, cron, slot)
    ok = runs[runs["status"] == SUCCEEDED]
    if not ok.empty:
        done = ok["ended_at"].min()
        done = None if pd.isna(done) else done.to_pydatetime()
        if done is None or done <= deadline:
            return Freshness(config.name, "on_time", "schedule", slot, deadline, last_success, None,
                             f"the {_hhmm(slot)} run succeeded" + (f" at {_hhmm(done)} UTC" if done else ""))
        return Freshness(config.name, "late", "schedule", slot, deadline, last_success, done - slot,
                         f"the {_hhmm(slot)} run succeeded at {_hhmm(done)} UTC, "
                         f"{format_duration(done - slot)} after it was due (SLA {format_duration(sla)})")
    late_by = now - slot
    if runs["status"].isin(IN_PROGRESS).any():
        state = "late" if now > deadline else "on_time"
        return Freshness(config.name, state, "schedule", slot, deadline, last_success,
                         late_by if state == "late" else None,
                         f"the {_hhmm(slot)} run is still running (due {_due(slot, now)}, "
                         f"{format_duration(late_by)} late)" if state == "late"
                         else f"the {_hhmm(slot)} run is running")
    failed = not runs.empty
    what = "failed and has not succeeded since" if failed else "has not happened"
    return Freshness(config.name, "missed", "schedule", slot, deadline, last_success, late_by,
                     f"the {_hhmm(slot)} run {what} (due {_due(slot, now)}, {format_duration(late_by)} late)")


def _interval(config, mine, sla, last_success, now) -> Freshness:
    every = timedelta(seconds=config.interval_seconds)
    ok = mine[mine["status"] == SUCCEEDED]
    if ok.empty:
        return Freshness(config.name, "missed", "interval", None, None, None, None,
                         f"no successful run recorded (expected every {format_duration(every)})")
    due = ok["started_at"].max().to_pydatetime() + every
    deadline = due + sla
    if now <= deadline:
        return Freshness(config.name, "on_time", "interval", due, deadline, last_success, None,
                         f"next run due {_hhmm(due)} UTC (every {format_duration(every)})")
    late_by = now - due
    running = mine[(mine["status"].isin(IN_PROGRESS)) & (mine["started_at"] >= due - every)]
    if not running.empty:
        return Freshness(config.name, "late", "interval", due, deadline, last_success, late_by,
                         f"the run due {_hhmm(due)} UTC is still running ({format_duration(late_by)} late)")
    return Freshness(config.name, "missed", "interval", due, deadline, last_success, late_by,
                     f"the {_hhmm(due)} run has not happened (due {_due(due, now)}, {format_duration(late_by)} late)")


def _event(config, mine, sla, last_success, now) -> Freshness:
    if last_success is None:
        return Freshness(config.name, "missed", "event", None, None, None, None,
                         "no successful run recorded")
    age = now - last_success
    deadline = last_success + sla
    if age <= sla:
        return Freshness(config.name, "on_time", "event", None, deadline, last_success, None,
                         f"last success {format_duration(age)} ago (SLA {format_duration(sla)})")
    state = "missed" if age > 2 * sla else "late"
    return Freshness(config.name, state, "event", None, deadline, last_success, age - sla,
                     f"no successful run for {format_duration(age)} (SLA {format_duration(sla)})")


# ---- helpers -----------------------------------------------------------------------------------


def _runs_of(runs: pd.DataFrame, name: str, now: datetime) -> pd.DataFrame:
    cols = ["pipeline", "status", "scheduled_for", "started_at", "ended_at"]
    if runs is None or runs.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c.endswith(("_at", "_for")) else object) for c in cols})
    mine = runs.loc[runs["pipeline"] == name].copy()
    for c in ("scheduled_for", "started_at", "ended_at"):
        if c not in mine:
            mine[c] = pd.NaT
        mine[c] = pd.to_datetime(mine[c], utc=True)
    # a run that has not started by ``now`` (future rows in a replay) does not count
    return mine[mine["started_at"].isna() | (mine["started_at"] <= now)]


def _slot_runs(mine: pd.DataFrame, cron: CronSchedule, slot: datetime) -> pd.DataFrame:
    nxt = cron.next_after(slot)
    by_slot = mine["scheduled_for"] == slot
    by_time = mine["scheduled_for"].isna() & (mine["started_at"] >= slot) & (mine["started_at"] < nxt)
    return mine[by_slot | by_time]


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _due(moment: datetime, now: datetime) -> str:
    """``06:00 UTC``, with the date when it is not today's."""
    if moment.date() == now.date():
        return f"{_hhmm(moment)} UTC"
    return f"{_hhmm(moment)} UTC on {moment.date().isoformat()}"
