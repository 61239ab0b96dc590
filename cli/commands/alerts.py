"""``pipepulse digest`` (also ``pipepulse alerts digest``) and ``pipepulse alerts rules``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pipepulse.settings import Settings


def _digest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--period",
        choices=("immediate", "daily", "weekly"),
        default="daily",
        help="which rules to run: those with this frequency (default daily)",
    )
    p.add_argument("--dry-run", action="store_true", help="render and show what would be sent; send and record nothing")
    p.add_argument("--out", metavar="FILE.html", help="also write the (first) message's HTML to this file")
    p.set_defaults(handler=cmd_digest)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="alert email digests: send, check rules")
    asub = p.add_subparsers(dest="alerts_command", metavar="COMMAND")
    asub.required = True
    _digest_args(asub.add_parser("digest", help="send the digest for a period (what the scheduler runs)"))
    rules = asub.add_parser("rules", help="check the [alerts] config and list the rules")
    rules.set_defaults(handler=cmd_rules)
    _digest_args(sub.add_parser("digest", help="send the alert digest: new failures, late runs, anomalies, spend"))


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import digest
    from store.db import check_schema, connect

    engine = connect(settings.database_url, create_dirs=False)
    check_schema(engine)
    result = digest.run(settings, engine, now=datetime.now(UTC), period=args.period, dry_run=args.dry_run, out=args.out)
    if result.locked:
        print(f"another {args.period} digest pass is running; nothing done")
        return 0
    for d in result.digests:
        to = ", ".join(d.recipients)
        if d.status == "dry-run":
            print(f"would send to {to}: {d.subject}")
        elif d.status == "sent":
            extra = f" (refused: {', '.join(d.refused)}; retried next pass)" if d.refused else ""
            print(f"sent to {to}: {d.subject}{extra}")
        else:
            print(f"FAILED to {to}: {d.error} (its items stay pending and are retried next pass)")
    if not result.digests:
        if result.rules == 0:
            print(f"{args.period}: no [[alerts.rules]] with frequency = \"{args.period}\" in {settings.config_label}; nothing to do")
        else:
            print(f"{args.period}: nothing new to send ({result.already_sent} already sent, {result.suppressed} held back)")
    if result.out is not None:
        print(f"wrote {result.out}")
    return 0 if result.ok else 1


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.rules import load_alert_config

    config = load_alert_config(settings)
    where = f"{config.smtp.host}:{config.smtp.port} ({config.smtp.security})" if config.channel == "smtp" else config.ses.region
    print(f"channel {config.channel} via {where}, sender {config.sender}, suppression {config.suppression.total_seconds() / 3600:g} h")
    if not config.rules:
        print("no rules: add [[alerts.rules]] tables to the config (see alerts/rules.py)")
    for r in config.rules:
        scope = ", ".join(r.pipelines) if r.pipelines else "all pipelines"
        print(f"  {r.name:<24} {r.kind:<18} {r.frequency:<9} {scope}; to {', '.join(r.recipients)}")
    return 0
