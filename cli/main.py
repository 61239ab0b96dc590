"""The ``pipepulse`` command line. Each command group lives in ``cli/commands/<group>.py`` and
exposes ``register(subparsers)``; a command's handler takes ``(args, settings)`` and returns an
exit status. Errors pipepulse knows about print one line and exit 1; nothing prints a traceback
at a user unless ``PIPEPULSE_LOG_LEVEL=DEBUG``.

Command modules import only the floor at their top and the rest inside their handlers, so
``pipepulse --help`` and the container's healthcheck start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli.commands import (
    alerts,
    anomalies,
    collect,
    costs,
    dashboard,
    db,
    demo,
    forecast,
    logs,
    ops,
    pipeline,
)
from cli.terminal import SafeText
from pipepulse.errors import PipepulseError
from pipepulse.logs import configure_logging
from pipepulse.settings import load_settings

__all__ = ["GROUPS", "build_parser", "main"]

# Command groups in the order `pipepulse --help` lists them.
GROUPS = {
    "db": db,
    "pipeline": pipeline,
    "collect": collect,
    "costs": costs,
    "forecast": forecast,
    "anomalies": anomalies,
    "alerts": alerts,
    "logs": logs,
    "dashboard": dashboard,
    "ops": ops,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipepulse",
        description="Observability and cost dashboard for data pipelines on AWS.",
        epilog="Settings come from pipepulse.toml (or PIPEPULSE_CONFIG) and PIPEPULSE_* variables.",
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./pipepulse.toml if present)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in GROUPS.values():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    # text for people: no escape sequences or control characters from the data (cli/terminal.py)
    sys.stdout, sys.stderr = SafeText(out), SafeText(err)
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader left (`pipepulse costs daily | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so the interpreter's last flush does not complain either
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = None
    try:
        settings = load_settings(config_path=args.config)
        configure_logging(settings.log_level, settings.log_format)
        return int(args.handler(args, settings) or 0)
    except PipepulseError as exc:
        if settings is not None and settings.log_level == "DEBUG":
            raise
        print(f"pipepulse: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pipepulse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
