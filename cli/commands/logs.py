"""``pipepulse logs parse FILE``: what pipepulse makes of log lines, one JSON object per record.

The parsers are the ones the logs collector uses (``collectors/logformats.py``): Lambda (text
and JSON log formats, platform lines and records, runtime errors, timeouts, out-of-memory
kills), Glue driver/executor logs and Step Functions execution logs. ``-`` reads standard input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipepulse.errors import InputError
from pipepulse.settings import Settings

__all__ = ["cmd_parse", "register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="read log lines the way the logs collector does")
    lsub = p.add_subparsers(dest="logs_command", metavar="COMMAND")
    lsub.required = True
    ps = lsub.add_parser(
        "parse",
        help="print one JSON object per record of a Lambda, Glue or Step Functions log file",
        description="Each record (a multi-line traceback is one record) becomes one JSON line with kind, "
        "request_id, level, timestamp, duration_ms, billed_duration_ms, memory_size_mb, max_memory_used_mb, "
        "init_duration_ms, error_type, error_message, timeout_seconds, xray_trace_id where the record has them, "
        "then the other fields it carries.",
    )
    ps.add_argument("file", metavar="FILE", help="the log text ('-' for standard input)")
    ps.add_argument("--format", choices=["auto", "lambda", "glue", "sfn"], default="auto",
                    help="the log's format (default: guessed from its first lines)")
    ps.set_defaults(handler=cmd_parse)


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from collectors.logformats import FIELDS, parse

    if args.file == "-":
        text = sys.stdin.read()
    else:
        path = Path(args.file)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"{path}: cannot read it ({exc.strerror or exc}); give a readable log file or '-'") from exc
    for rec in parse(text, args.format):
        ordered = {k: rec[k] for k in FIELDS if k in rec}
        ordered.update((k, v) for k, v in rec.items() if k not in ordered)
        print(json.dumps(ordered))
    return 0
