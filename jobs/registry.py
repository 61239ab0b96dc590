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

``command`` is the ``pipepulse`` command line that runs the job once: the crontab lines
(``pipepulse schedule --print-crontab``) and the EventBridge rules of
``deploy/cloudformation/pipepulse.yaml`` run exactly these (``planned`` lists them as the config
schedules them; ``tests/jobs/test_schedule_agreement.py`` checks the three agree). A job with
``cloud`` set has no EventBridge rule; ``cloud`` says what replaces it on AWS.

Adding a job: write ``jobs/<name>.py`` with ``run(settings, engine, *, now)``, add a line to
``JOBS`` with its command, and a rule to the CloudFormation template (the test says which).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipepulse.settings import Settings

if TYPE_CHECKING:  # (the command line lists jobs without importing SQLAlchemy)
    from sqlalchemy.engine import Engine

__all__ = ["JOBS", "Job", "Planned", "job", "planned"]


@dataclass(frozen=True)
class Job:
    """One schedulable job (see the module docstring)."""

    name: str  # the [schedule] key and the name `pipepulse schedule` shows
    cron: str  # default schedule, 5-field cron in UTC
    target: str  # "module:function", the function run(settings, engine, *, now, **options)
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed keyword arguments
    per_source: bool = False  # the scheduler runs it once per collector source, on that source's cron
    command: tuple[str, ...] = ()  # `pipepulse <command>` runs it once (crontab, EventBridge)
    cloud: str = ""  # why it has no EventBridge rule (what replaces it on AWS); "" = it has one

    def function(self) -> Callable[..., Any]:
        """The run function (imported now)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def run(self, settings: Settings, engine: Engine, *, now: datetime, **options: Any) -> Any:
        """Run the job once at ``now``; ``options`` add to (or override) the job's own."""
        return self.function()(settings, engine, now=now, **{**self.options, **options})


JOBS: tuple[Job, ...] = (
    Job("collect", "*/5 * * * *", "jobs.collect:run",
        "pull run state, metrics, logs and cost from every enabled source into the store", per_source=True,
        command=("collect",)),
    Job("detect", "*/15 * * * *", "jobs.detect:run",
        "anomaly detection over the stored metrics, runs and cost; incidents stored by fingerprint",
        command=("detect",)),
    Job("forecast", "0 6 * * *", "jobs.forecast:run",
        "spend forecasts (total and budgeted pipelines) with their backtests, stored as snapshots",
        command=("forecast", "snapshot")),
    Job("alerts_immediate", "*/5 * * * *", "jobs.digest:run",
        "immediate alerts (rules with frequency = \"immediate\": budget, anomalies, failures) between digests",
        {"period": "immediate"}, command=("alerts", "digest", "--period", "immediate")),
    Job("digest_daily", "0 8 * * *", "jobs.digest:run",
        "the daily alert digest: new failures, late runs, anomalies, spend", {"period": "daily"},
        command=("alerts", "digest", "--period", "daily")),
    Job("digest_weekly", "0 8 * * 1", "jobs.digest:run",
        "the weekly alert digest", {"period": "weekly"}, command=("alerts", "digest", "--period", "weekly")),
    Job("retention", "30 3 * * *", "jobs.retention:run",
        "delete raw rows older than [retention] days in batches (PostgreSQL: whole expired month partitions "
        "dropped, next months' partitions created); the daily rollups stay",
        command=("retention", "apply")),
    Job("backup", "0 3 * * *", "jobs.backup:run",
        "copy the SQLite database into [backup] dir, keeping the newest [backup] keep copies",
        command=("db", "backup"),
        cloud="RDS automated backups with point-in-time recovery (the BackupRetentionDays parameter)"),
)


def job(name: str) -> Job:
    """The registered job ``name`` (KeyError naming the known jobs otherwise)."""
    for j in JOBS:
        if j.name == name:
            return j
    raise KeyError(f"no job {name!r}; known: {', '.join(j.name for j in JOBS)}")


@dataclass(frozen=True)
class Planned:
    """One line of the schedule as the config sets it: a name, its cron, the command that runs it."""

    name: str
    cron: str
    command: tuple[str, ...]
    job: Job


def planned(settings: Settings) -> list[Planned]:
    """What runs when: each enabled collector source (``collect --source <name>`` on its
    ``[collectors.<name>] cron``), then every other job on its ``[schedule]`` cron (off when "")."""
    # imported here: a listing of jobs that collects nothing loads no collector
    from collectors.runner import enabled_sources

    table = settings.section("schedule")
    out: list[Planned] = []
    for j in JOBS:
        if j.per_source:
            out += [Planned(c.name, c.cron, (*j.command, "--source", c.name), j) for c in enabled_sources(settings)]
            continue
        expression = table.get(j.name, j.cron)
        if isinstance(expression, str) and expression:
            out.append(Planned(j.name, expression, j.command, j))
    return out
