"""``pipepulse collect`` (one pass, for system cron) and ``pipepulse schedule`` (long-running).

Both run the jobs of ``jobs/registry.py``: ``collect`` is the ``collect`` job once, ``schedule``
runs every job on its cron (``schedule --list`` shows them). Crontab line for a 5-minute pass::

    */5 * * * *  cd /srv/pipepulse && .venv/bin/pipepulse collect >> /var/log/pipepulse.log 2>&1
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import UTC, datetime

from pipepulse.settings import Settings

__all__ = ["cmd_collect", "cmd_schedule", "crontab", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    from cli.awsenv import add_local_aws_flag
    from collectors.sources import SOURCES
    from jobs.registry import job

    p = sub.add_parser("collect", help="one collection pass of every enabled source (for cron)",
                       description=f"The collect job: {job('collect').description}.")
    p.add_argument("--source", action="append", choices=list(SOURCES), metavar="NAME",
                   help=f"only this source (repeatable): {', '.join(SOURCES)}")
    add_local_aws_flag(p)
    p.set_defaults(handler=cmd_collect)
    s = sub.add_parser("schedule", help="run the collectors and jobs on their cron schedules until SIGTERM")
    s.add_argument("--list", action="store_true", help="print each job, its cron and what it does; run nothing")
    s.add_argument("--print-crontab", action="store_true",
                   help="print crontab lines that run the same jobs on the same crons (instead of this scheduler); run nothing")
    s.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus /metrics on this port (default [metrics] port, 9108; 0: do not serve)")
    s.add_argument("--pipepulse", metavar="PATH", default="pipepulse",
                   help="with --print-crontab: the pipepulse executable the lines call (default: pipepulse on PATH)")
    add_local_aws_flag(s)
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
    with aws_environment(settings, start=getattr(args, "local_aws", False) or None):
        result = job("collect").run(settings, engine, now=now or datetime.now(UTC), sources=args.source or None)
    for name in result.skipped:
        print(f"{name:<14} skipped: another pass of this source is running ({result.holders.get(name, 'owner unknown')})")
    if result.dead_holders:
        print(f"{'':<14} error: {', '.join(result.dead_holders)} not collected: the owner of the lock looks dead")
    for r in result.passes:
        line = f"{r.source:<14} {r.status:<10} rows {r.rows_written:>8,}  API calls {r.api_calls:>5}  ${r.api_cost_usd:.4f}"
        if r.retries:
            line += f"  retries {sum(r.retries.values())}"
        print(line)
        for t in r.targets:  # a source read over accounts x regions: each one's outcome and calls
            who = f"{t['name']} ({t['account']})" if t["name"] else t["account"] or "default"
            print(f"{'':<2}{who + ' ' + t['region']:<34} {t['status']:<10} rows {t['rows']:>8,}  API calls {t['api_calls']:>5}")
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

    if args.print_crontab:
        from jobs.registry import planned

        print(crontab(planned(settings), executable=args.pipepulse, config=settings.config_path))
        return 0
    engine = _engine(settings)
    described = {j.name: j.description for j in JOBS}
    if args.list:
        listed = build_jobs(settings, engine)
        width = _name_width(s.name for s in listed)
        for s in listed:
            print(f"{s.name:<{width}} {s.cron.expression:<16} {described.get(s.name, 'collector source (the collect job)')}")
        return 0
    from jobs.metrics import Metrics, serve

    jobs = build_jobs(settings, engine)
    holder: list = []  # the scheduler, made below: its health() feeds /metrics
    metrics = Metrics(sources=[j.name for j in jobs if j.name not in described], database_probe=lambda: _ping(engine),
                      down_since=lambda: holder[0].database_down_since if holder else None)
    port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if port:
        server, _ = serve(metrics, host=settings.metrics_host, port=port)
        print(f"metrics on http://{settings.metrics_host}:{server.server_port}/metrics")
    with aws_environment(settings, start=getattr(args, "local_aws", False) or None):
        scheduler = Scheduler(engine, jobs, lock_ttl=lock_ttl(settings), on_outcome=metrics.observe)
        holder.append(scheduler)
        scheduler.install_signal_handlers()
        width = _name_width(j.name for j in scheduler.jobs)
        for j in scheduler.jobs:
            print(f"{j.name:<{width}} {j.cron.expression:<16} next {j.next_at:%Y-%m-%d %H:%M} UTC")
        scheduler.run_forever()
    return 0


def _ping(engine) -> bool:
    import sqlalchemy as sa

    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return True


def _name_width(names: Iterable[str]) -> int:
    """The job-name column's width: the longest name and a space (a fixed 14 pushed the rest of
    the alerts_immediate row two characters right of the others)."""
    return max((len(n) for n in names), default=0) + 1


def crontab(lines, *, executable: str = "pipepulse", config=None) -> str:
    """The schedule as a crontab: ``CRON_TZ=UTC`` (the crons are UTC) and one line per job."""
    import shlex

    base = [executable, *(["--config", str(config.resolve())] if config else [])]
    out = ["# pipepulse jobs (`pipepulse schedule --print-crontab`); the crons are UTC", "CRON_TZ=UTC"]
    for p in lines:
        out.append(f"{p.cron:<16} {shlex.join([*base, *p.command])}  # {p.name}")
    return "\n".join(out)
