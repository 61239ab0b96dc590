"""``pipepulse collect`` (one pass, for system cron) and ``pipepulse schedule`` (long-running).

Both run the jobs of ``jobs/registry.py``: ``collect`` is the ``collect`` job once, ``schedule``
runs every job on its cron (``schedule --list`` shows them). Crontab line for a 5-minute pass::

    */5 * * * *  cd /srv/pipepulse && .venv/bin/pipepulse collect >> /var/log/pipepulse.log 2>&1
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pipepulse.settings import Settings

__all__ = ["cmd_collect", "cmd_schedule", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    from collectors.runner import SOURCES
    from jobs.registry import job

    p = sub.add_parser("collect", help="one collection pass of every enabled source (for cron)",
                       description=f"The collect job: {job('collect').description}.")
    p.add_argument("--source", action="append", choices=list(SOURCES), metavar="NAME",
                   help=f"only this source (repeatable): {', '.join(SOURCES)}")
    p.set_defaults(handler=cmd_collect)
    s = sub.add_parser("schedule", help="run the collectors and jobs on their cron schedules until SIGTERM")
    s.add_argument("--list", action="store_true", help="print each job, its cron and what it does; run nothing")
    s.set_defaults(handler=cmd_schedule)


def _engine(settings: Settings):
    from store.db import check_schema, connect

    engine = connect(settings.database_url)
    check_schema(engine)
    return engine


def cmd_collect(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    """One pass; prints rows, API calls and their price per source; 1 when a source failed."""
    from cli.awsenv import aws_environment
    from jobs.registry import job

    engine = _engine(settings)
    with aws_environment(settings):
        result = job("collect").run(settings, engine, now=now or datetime.now(UTC), sources=args.source or None)
    for name in result.skipped:
        print(f"{name:<14} skipped: another pass of this source is running ({result.holders.get(name, 'owner unknown')})")
    for r in result.passes:
        line = f"{r.source:<14} {r.status:<10} rows {r.rows_written:>8,}  API calls {r.api_calls:>5}  ${r.api_cost_usd:.4f}"
        if r.retries:
            line += f"  retries {sum(r.retries.values())}"
        print(line)
        if r.error:
            print(f"{'':<14} error: {r.error}")
    rows = sum(r.rows_written for r in result.passes)
    calls = sum(r.api_calls for r in result.passes)
    usd = sum(r.api_cost_usd for r in result.passes)
    print(f"{'total':<14} {'':<10} rows {rows:>8,}  API calls {calls:>5}  ${usd:.4f}")
    return 1 if result.status == "failed" else 0


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    """Run every job on its cron until SIGTERM/SIGINT (or, with --list, say what would run)."""
    from cli.awsenv import aws_environment
    from jobs.registry import JOBS
    from jobs.scheduler import Scheduler, build_jobs, lock_ttl

    engine = _engine(settings)
    if args.list:
        described = {j.name: j.description for j in JOBS}
        for s in build_jobs(settings, engine):
            print(f"{s.name:<14} {s.cron.expression:<16} {described.get(s.name, 'collector source (the collect job)')}")
        return 0
    with aws_environment(settings):
        scheduler = Scheduler(engine, build_jobs(settings, engine), lock_ttl=lock_ttl(settings))
        scheduler.install_signal_handlers()
        for j in scheduler.jobs:
            print(f"{j.name:<14} {j.cron.expression:<16} next {j.next_at:%Y-%m-%d %H:%M} UTC")
        scheduler.run_forever()
    return 0
