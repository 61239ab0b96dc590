"""``pipepulse costs``: import FOCUS/CUR export files, and show the stored daily cost."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta

from pipepulse.errors import InputError
from pipepulse.export import write_csv
from pipepulse.redact import terminal_text
from pipepulse.settings import Settings

__all__ = ["cmd_daily", "cmd_import", "register"]

SHOW_REJECTIONS = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("costs", help="cost data: import FOCUS/CUR exports, daily totals")
    csub = p.add_subparsers(dest="costs_command", metavar="COMMAND")
    csub.required = True
    imp = csub.add_parser(
        "import",
        help="load FOCUS or CUR files (paths, folders or s3://bucket/prefix); a month in them replaces that month",
    )
    imp.add_argument("paths", nargs="+", metavar="PATH", help="file, folder or s3://bucket/prefix")
    imp.add_argument("--show-rejections", type=int, default=SHOW_REJECTIONS, metavar="N",
                     help=f"how many rejected rows to print (default {SHOW_REJECTIONS})")
    imp.set_defaults(handler=cmd_import)
    daily = csub.add_parser("daily", help="stored daily cost between two dates (both included)")
    daily.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day: YYYY-MM-DD, today or today-N (N days ago, UTC)")
    daily.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day: YYYY-MM-DD, today or today-N")
    daily.add_argument("--by", choices=["service", "region", "usage_type", "account", "pipeline", "provider"])
    daily.add_argument("--source", choices=["focus", "cur", "athena", "ce", "estimate"],
                       help="one source only (default: per day the best of focus > cur > ce)")
    daily.add_argument("--format", choices=["table", "csv"], default="table")
    daily.set_defaults(handler=cmd_daily)


def _engine(settings: Settings):
    from store.db import check_schema, connect

    engine = connect(settings.database_url)
    check_schema(engine)
    return engine


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.import_costs import import_cost_files

    engine = _engine(settings)
    s3 = None
    if any(p.startswith("s3://") for p in args.paths):
        import boto3

        s3 = boto3.client("s3", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    result = import_cost_files(engine, args.paths, tag_key=settings.cost_tag_key, now=datetime.now(UTC), s3_client=s3)
    for name, kind, read, rejected in result.files:
        print(f"{name}: {kind.upper()}, {read:,} rows read, {rejected:,} rejected")
    if not result.files:  # nothing was read: the errors below say why, without a summary of nothing
        for name, reason in result.unreadable:
            print(f"pipepulse: error: {name}: {reason}", file=sys.stderr)
        return 0 if result.ok else 1
    print(f"rows stored: {result.rows_stored:,} daily cost rows changed ({result.daily_rows:,} daily rows from "
          f"{result.rows_read - result.rows_rejected:,} good line items)")
    print(f"rows rejected: {result.rows_rejected:,}")
    for r in result.rejections[: max(0, args.show_rejections)]:
        print(f"  {r}")
    if result.rows_rejected > args.show_rejections:
        print(f"  ... and {result.rows_rejected - args.show_rejections:,} more")
    if result.duplicates:
        print(f"repeated line items: {result.duplicates:,} (each counted once)")
    for note in result.notes:
        print(f"note: {note}")
    if result.currencies:
        print("total per billing month:")
        for (kind, month, currency), t in sorted(result.currencies.items()):
            print(f"  {kind:<5} {month}  billed {t['billed_cost']:>14,.2f}  effective {t['effective_cost']:>14,.2f}  {currency}  ({t['rows']:,} rows)")
    for name, reason in result.unreadable:
        print(f"pipepulse: error: {name}: {reason}", file=sys.stderr)
    return 0 if result.ok else 1


def _day(value: str, flag: str, *, today: date | None = None) -> date:
    """YYYY-MM-DD, or ``today`` / ``today-N`` (N days before today, UTC)."""
    text = value.strip().lower()
    if text.startswith("today"):
        today = today or datetime.now(UTC).date()
        rest = text[len("today"):]
        if not rest:
            return today
        if rest.startswith("-") and rest[1:].isdigit() and int(rest[1:]) <= 36600:
            return today - timedelta(days=int(rest[1:]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} {value!r} is not a date; use YYYY-MM-DD, today or today-N (N days ago), "
                         f"e.g. {flag} 2026-11-01 or {flag} today-30") from None


def cmd_daily(args: argparse.Namespace, settings: Settings) -> int:
    from store.costs import daily_cost

    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    if end < start:
        raise InputError(f"--to {end} is before --from {start}; the range includes both days")
    engine = _engine(settings)
    with engine.connect() as conn:
        frame = daily_cost(conn, start, end, by=args.by, source=args.source)
    columns = ["day", *([args.by] if args.by else []), "source", "billed_cost", "effective_cost", "currency"]
    if args.format == "csv":
        # the one CSV writer: names and services from cost exports may be formulas
        write_csv(sys.stdout, columns, ([f"{v:.6f}" if isinstance(v, float) else v for v in row]
                                        for row in frame[columns].itertuples(index=False)))
        return 0
    if frame.empty:
        print(f"no cost stored between {start} and {end}")
        return 0
    widths = {c: max(len(c), *(len(_cell(v)) for v in frame[c])) for c in columns}
    print("  ".join(c.ljust(widths[c]) if not c.endswith("_cost") else c.rjust(widths[c]) for c in columns))
    for row in frame[columns].itertuples(index=False):
        print("  ".join(_cell(v).rjust(widths[c]) if c.endswith("_cost") else _cell(v).ljust(widths[c]) for c, v in zip(columns, row, strict=True)))
    print(f"total: billed {frame['billed_cost'].sum():,.2f}  effective {frame['effective_cost'].sum():,.2f}")
    return 0


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    # text from cost exports: escape sequences would recolour or retitle the terminal
    return terminal_text(str(v)) if v != "" else "(none)"
