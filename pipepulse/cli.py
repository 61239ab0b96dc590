"""The ``pipepulse`` command line. Each command group lives in ``pipepulse/commands/<group>.py``
and exposes ``register(subparsers)``; a command's handler takes ``(args, settings)`` and returns
an exit status. Errors pipepulse knows about print one line and exit 1; nothing prints a
traceback at a user unless ``PIPEPULSE_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pipepulse.errors import PipepulseError

__all__ = ["build_parser", "main"]

# Command groups in the order `pipepulse --help` lists them.
GROUPS = (
    "db",
    "pipeline",
    "collect",
    "costs",
    "forecast",
    "anomalies",
    "alerts",
    "dashboard",
    "ops",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipepulse",
        description="Observability and cost dashboard for data pipelines on AWS.",
        epilog="Settings come from pipepulse.toml (or PIPEPULSE_CONFIG) and PIPEPULSE_* variables.",
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./pipepulse.toml if present)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        try:
            module = importlib.import_module(f"pipepulse.commands.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pipepulse.commands.{group}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipepulse.logs import configure_logging
    from pipepulse.settings import load_settings

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
