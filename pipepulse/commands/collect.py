"""``pipepulse collect`` (one pass, for system cron) and ``pipepulse schedule`` (long-running).

Crontab line for a 5-minute pass::

    */5 * * * *  cd /srv/pipepulse && .venv/bin/pipepulse collect >> /var/log/pipepulse.log 2>&1
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from pipepulse.settings import Settings

__all__ = ["cmd_collect", "cmd_schedule", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    from collectors.runner import SOURCES

    p = sub.add_parser("collect", help="one collection pass of every enabled source (for cron)")
    p.add_argument("--source", action="append", choices=list(SOURCES), metavar="NAME",
                   help=f"only this source (repeatable): {', '.join(SOURCES)}")
    p.set_defaults(handler=cmd_collect)
    s = sub.add_parser("schedule", help="run the collectors and jobs on their cron schedules until SIGTERM")
    s.set_defaults(handler=cmd_schedule)


def _engine(settings: Settings):
    from store.db import check_schema, connect

    engine = connect(settings.database_url)
    check_schema(engine)
    return engine


def _lock_ttl(settings: Settings) -> timedelta:
    from pipepulse.settings import opt

    minutes = opt(settings.section("schedule"), "lock_ttl_minutes", int, settings.config_label, "schedule", default=60)
    return timedelta(minutes=minutes)


def cmd_collect(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    """One pass; prints rows, API calls and their price per source; 1 when a source failed."""
    from collectors.runner import SOURCES, PassResult, collect, enabled_sources
    from collectors.scheduler import job_lock
    from pipepulse.awsenv import aws_environment

    engine = _engine(settings)
    now = now or datetime.now(UTC)
    wanted = args.source or None
    results: list[PassResult] = []
    with aws_environment(settings):
        names = [n for n in SOURCES if n in wanted] if wanted else [c.name for c in enabled_sources(settings)]
        for name in names:
            with job_lock(engine, name, now=now, ttl=_lock_ttl(settings)) as got:
                if not got:
                    print(f"{name:<14} skipped: another pass of this source is running")
                    continue
                results.extend(collect(settings, engine, sources=[name], now=now))
    total_calls = sum(r.api_calls for r in results)
    total_usd = sum(r.api_cost_usd for r in results)
    for r in results:
        line = f"{r.source:<14} {r.status:<10} rows {r.rows_written:>8,}  API calls {r.api_calls:>5}  ${r.api_cost_usd:.4f}"
        if r.retries:
            line += f"  retries {sum(r.retries.values())}"
        print(line)
        if r.error:
            print(f"{'':<14} error: {r.error}")
    print(f"{'total':<14} {'':<10} rows {sum(r.rows_written for r in results):>8,}  API calls {total_calls:>5}  ${total_usd:.4f}")
    return 1 if any(not r.ok for r in results) else 0


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    """Run every job on its cron until SIGTERM/SIGINT."""
    from collectors.scheduler import Scheduler, build_jobs
    from pipepulse.awsenv import aws_environment

    engine = _engine(settings)
    with aws_environment(settings):
        scheduler = Scheduler(engine, build_jobs(settings, engine), lock_ttl=_lock_ttl(settings))
        scheduler.install_signal_handlers()
        for job in scheduler.jobs:
            print(f"{job.name:<14} {job.cron.expression:<16} next {job.next_at:%Y-%m-%d %H:%M} UTC")
        scheduler.run_forever()
    return 0
