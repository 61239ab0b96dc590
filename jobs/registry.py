"""Every scheduled job, listed once: its name, default cron, run function and what it does.

``pipepulse schedule`` (``jobs/scheduler.py``) runs these on their cron and the CLI's one-shot
commands run the same functions, so what a crontab line does and what the scheduler does cannot
drift. A job's function is ``run(settings, engine, *, now, **options) -> result``; ``target``
names it as ``"module:function"`` and is imported only when the job runs (a CLI that lists the
jobs does not load pandas). A result with ``status == "failed"`` (and an ``error``) counts as a
failed run of the job.

``[schedule]`` in the config changes a job's cron (``detect = "*/30 * * * *"``) or turns it off
(``detect = ""``). ``collect`` is special (``per_source``): the scheduler runs each enabled
collector source on its own ``[collectors.<source>] cron``; its cron here is the one a single
crontab line for all sources would use.

Adding a job: write ``jobs/<name>.py`` with ``run(settings, engine, *, now)`` and add a line to
``JOBS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from pipepulse.settings import Settings

__all__ = ["JOBS", "Job", "job"]


@dataclass(frozen=True)
class Job:
    """One schedulable job (see the module docstring)."""

    name: str  # the [schedule] key and the name `pipepulse schedule` shows
    cron: str  # default schedule, 5-field cron in UTC
    target: str  # "module:function", the function run(settings, engine, *, now, **options)
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed keyword arguments
    per_source: bool = False  # the scheduler runs it once per collector source, on that source's cron

    def function(self) -> Callable[..., Any]:
        """The run function (imported now)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def run(self, settings: Settings, engine: Engine, *, now: datetime, **options: Any) -> Any:
        """Run the job once at ``now``; ``options`` add to (or override) the job's own."""
        return self.function()(settings, engine, now=now, **{**self.options, **options})


JOBS: tuple[Job, ...] = (
    Job("collect", "*/5 * * * *", "jobs.collect:run",
        "pull run state, metrics, logs and cost from every enabled source into the store", per_source=True),
    Job("detect", "*/15 * * * *", "jobs.detect:run",
        "anomaly detection over the stored metrics, runs and cost; incidents stored by fingerprint"),
    Job("forecast", "0 6 * * *", "jobs.forecast:run",
        "spend forecasts (total and budgeted pipelines) with their backtests, stored as snapshots"),
    Job("digest_daily", "0 8 * * *", "jobs.digest:run",
        "the daily alert digest: new failures, late runs, anomalies, spend", {"period": "daily"}),
    Job("digest_weekly", "0 8 * * 1", "jobs.digest:run",
        "the weekly alert digest", {"period": "weekly"}),
    Job("retention", "30 3 * * *", "jobs.retention:run",
        "delete raw rows older than [retention] days in batches; the daily rollups stay"),
)


def job(name: str) -> Job:
    """The registered job ``name`` (KeyError naming the known jobs otherwise)."""
    for j in JOBS:
        if j.name == name:
            return j
    raise KeyError(f"no job {name!r}; known: {', '.join(j.name for j in JOBS)}")
