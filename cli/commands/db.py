"""``pipepulse db``: schema migrations and status."""

from __future__ import annotations

import argparse

from pipepulse.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database schema: upgrade, status, backup")
    dsub = p.add_subparsers(dest="db_command", metavar="COMMAND")
    dsub.required = True
    up = dsub.add_parser("upgrade", help="create or migrate the schema to the newest version (safe to repeat)")
    up.add_argument("--dashboard-role", metavar="ROLE",
                    help="PostgreSQL: also create/update the dashboard's read-mostly ROLE (password from "
                    "PIPEPULSE_DASHBOARD_DB_PASSWORD) with exactly its grants (store/roles.py)")
    up.set_defaults(handler=cmd_upgrade)
    st = dsub.add_parser("status", help="show the database, its schema revision and row counts")
    st.set_defaults(handler=cmd_status)
    bk = dsub.add_parser("backup", help="copy the SQLite database to PATH while it is in use (PostgreSQL: pg_dump)")
    bk.add_argument("path", metavar="PATH", nargs="?",
                    help="file to write, e.g. backups/pipepulse-2026-11-20.db; without it, the backup job: a dated "
                    "copy in [backup] dir (default <data_dir>/backups), keeping the newest [backup] keep (default 7)")
    bk.add_argument("--force", action="store_true", help="replace PATH if it exists")
    bk.set_defaults(handler=cmd_backup)


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from store.db import connect, describe_url, schema_status, upgrade

    engine = connect(settings.database_url)
    before = schema_status(engine)
    after = upgrade(engine)
    if before.current == after.current:
        print(f"{describe_url(settings.database_url)}: already at schema {after.current}")
    else:
        print(f"{describe_url(settings.database_url)}: migrated {before.current or '(empty)'} -> {after.current}")
    if args.dashboard_role:
        from store.roles import grant_dashboard_role

        password = settings.secret("PIPEPULSE_DASHBOARD_DB_PASSWORD", where="db upgrade --dashboard-role")
        with engine.begin() as conn:
            grant_dashboard_role(conn, args.dashboard_role, password)
        print(f"dashboard role {args.dashboard_role}: reads every table, writes anomaly statuses and the audit log")
    engine.dispose()
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from store.db import connect, describe_url, schema_status
    from store.stats import table_counts

    engine = connect(settings.database_url, create_dirs=False)
    status = schema_status(engine)
    print(f"database: {describe_url(settings.database_url)}")
    state = "up to date" if status.up_to_date else ("NEWER than this code" if status.newer_than_code else "needs `pipepulse db upgrade`")
    print(f"schema:   {status.current or '(empty)'} (code head {status.head}; {state})")
    if status.up_to_date:
        for table, count in table_counts(engine).items():
            print(f"  {table:<22} {count:>12,}")
    return 0 if status.up_to_date else 1


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from store.backup import backup_sqlite
    from store.db import connect

    if args.path is None:
        from datetime import UTC, datetime

        from jobs.registry import job

        done = job("backup").run(settings, connect(settings.database_url, create_dirs=False), now=datetime.now(UTC))
        if done.backup is None:
            print(f"backup skipped: {done.error}")
            return 0
        print(f"backed up {done.backup.source} to {done.backup.path} ({done.backup.bytes:,} bytes); "
              f"removed {len(done.removed)} older cop{'y' if len(done.removed) == 1 else 'ies'}")
        return 0
    result = backup_sqlite(settings.database_url, args.path, overwrite=args.force)
    print(f"backed up {result.source} to {result.path} ({result.bytes:,} bytes in {result.seconds:.1f} s)")
    return 0
