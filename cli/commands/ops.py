"""``pipepulse retention apply`` (the ``retention`` job: prune raw data older than the configured
days) and ``pipepulse healthcheck`` (the container's health probe, ``cli/health.py``).

``pipepulse db backup`` lives with the other ``db`` commands (``cli/commands/db.py``) and calls
``store.backup``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pipepulse.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retention", help="delete raw data older than the configured days; rollups stay")
    rsub = p.add_subparsers(dest="retention_command", metavar="COMMAND")
    rsub.required = True
    ap = rsub.add_parser(
        "apply",
        help="delete old metric points, logs, run steps, collector passes and notifications in batches",
        description="Days per table come from [retention] in the config (see docs/deploy.md). "
        "run_daily and cost_daily, which the dashboard reads, are never pruned.",
    )
    ap.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    ap.set_defaults(handler=cmd_apply)

    hc = sub.add_parser(
        "healthcheck",
        help="exit 0 when the database is reachable with a current schema (and --url answers 2xx)",
    )
    hc.add_argument("--url", help="also GET this URL, e.g. http://127.0.0.1:8501/_stcore/health")
    hc.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for --url (default 5)")
    hc.set_defaults(handler=cmd_healthcheck)


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import retention
    from jobs.registry import job
    from store.db import check_schema, connect

    config = retention.retention_config(settings)  # config errors before touching the database
    engine = connect(settings.database_url, create_dirs=False)
    try:
        check_schema(engine)
        now = datetime.now(UTC)
        counts = retention.plan(settings, engine, now=now) if args.dry_run else job("retention").run(settings, engine, now=now)
    finally:
        engine.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    for table, n in counts.items():
        days = config.days[table]
        print(f"{table:<16} {verb} {n:>10,} rows older than {days} days")
    print(f"total            {verb} {sum(counts.values()):>10,} rows")
    return 0


def cmd_healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    from cli.health import check_health

    for line in check_health(settings, url=args.url, timeout=args.timeout):
        print(f"ok: {line}")
    return 0
