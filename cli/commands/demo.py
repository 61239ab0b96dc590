"""``pipepulse demo``: build the demo's 90 days and serve the dashboard over them.

The demo is development-only (``devkit.demo``, on a local AWS): without the development kit
these commands say what to install.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from pipepulse.redact import mask_url
from pipepulse.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build demo data on a local AWS and serve the dashboard")
    dsub = p.add_subparsers(dest="demo_command", metavar="COMMAND")
    dsub.required = True
    for name, helptext in (
        ("build", "rebuild the demo data folder: pipeline history, collection, detection, forecasts"),
        ("up", "build, then serve the dashboard and keep the local AWS running for other commands"),
    ):
        c = dsub.add_parser(name, help=helptext)
        c.add_argument("--days", type=_positive, default=90, help="days of history (default 90)")
        if name == "up":
            c.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
            c.add_argument("--aws-port", type=int, default=0, help="local AWS port (default: a free one)")
            c.add_argument("--no-build", action="store_true", help="serve what was built last time")
        c.set_defaults(handler=cmd_build if name == "build" else cmd_up)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if not 1 <= value <= 400:
        raise argparse.ArgumentTypeError(f"expected 1 to 400 days, got {value}")
    return value


def _devkit_demo():
    """``devkit.demo``, or a ConfigError saying what to install."""
    from cli.awsenv import devkit_missing

    try:
        from devkit import demo
    except ModuleNotFoundError as exc:
        raise devkit_missing("pipepulse demo", exc) from exc
    return demo


def _build(settings: Settings, days: int, target) -> None:
    from store.db import connect, upgrade

    demo = _devkit_demo()
    demo.reset_demo_dir(settings)
    engine = connect(settings.database_url)
    upgrade(engine)
    summary = demo.build_demo(settings, engine, days=days, end=demo.default_end(), local_aws=target.server,
                              announce=lambda line: print(line, file=sys.stderr, flush=True),
                              bar=_bar_printer(sys.stderr))
    print(f"demo: {days} days of history ending {summary.end:%Y-%m-%d %H:%M} UTC in {mask_url(settings.database_url)}")
    for name, seconds, text in summary.steps:
        print(f"  {name:<24} {seconds:6.1f} s  {text}")
    for source, error in summary.extra.get("failed_sources", []):
        print(f"  collector {source} FAILED: {error}")
    print("stored rows:")
    for table, count in summary.counts.items():
        if count:
            print(f"  {table:<22} {count:>10,}")
    engine.dispose()


def _bar_printer(stream):
    """Draws the demo's progress bars: redrawn in place on a terminal; otherwise (a log file, CI,
    a pipe) one plain line at each tenth of the step and at its end, without control characters."""
    terminal = getattr(getattr(stream, "raw", stream), "isatty", lambda: False)()
    tenths: list[int] = [-1]

    def draw(line: str, done: int, total: int) -> None:
        if terminal:
            raw = getattr(stream, "raw", stream)  # the bar's own \r; its text is ours
            raw.write("\r" + line + ("\n" if done >= total else ""))
            raw.flush()
            return
        tenth = 10 * done // total if total else 10
        if done == 0:
            tenths[0] = -1
        if tenth != tenths[0] or done >= total:
            tenths[0] = tenth
            print(line, file=stream, flush=True)

    return draw


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from cli.awsenv import aws_environment

    _devkit_demo()  # before a local AWS is asked for
    with aws_environment(settings, start=True) as target:
        if target.server is None:
            return _needs_local_aws(settings, target)
        _build(settings, args.days, target)
    return 0


def _needs_local_aws(settings: Settings, target) -> int:
    """Why the demo got no local AWS of its own, naming only what is actually set."""
    if target.kind == "local":
        why = (f"another demo is running on this data folder ({settings.data_dir}, local AWS at {target.endpoint}): "
               "stop it (Ctrl-C in its terminal), or give this one its own folder with PIPEPULSE_DATA_DIR")
    elif target.kind == "endpoint":
        why = (f"an AWS endpoint is configured ({target.endpoint}, from AWS_ENDPOINT_URL or [aws] endpoint_url) and the "
               "demo builds on a local AWS of its own: run it without that setting")
    else:
        why = ("AWS credentials are configured (or PIPEPULSE_LOCAL_AWS / [aws] local is false) and the demo never "
               "touches real AWS: run it with PIPEPULSE_LOCAL_AWS=true")
    print(f"pipepulse: error: {why}", file=sys.stderr)
    return 1


def _follow_port(settings: Settings, port: int) -> Settings:
    """The settings with a local ``dashboard_url`` on ``port``, so digest links open this dashboard."""
    import dataclasses
    from urllib.parse import urlsplit

    url = urlsplit(settings.dashboard_url)
    if url.hostname not in ("localhost", "127.0.0.1") or (url.port or 80) == port:
        return settings
    return dataclasses.replace(settings, dashboard_url=url._replace(netloc=f"{url.hostname}:{port}").geturl())


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from cli.awsenv import advertise_local_aws, aws_environment
    from cli.ports import port_problem
    from pipepulse.errors import InputError

    _devkit_demo()  # before a local AWS is asked for
    problem = port_problem("127.0.0.1", args.port)  # before minutes of building
    if problem:
        raise InputError(problem)
    settings = _follow_port(settings, args.port)
    with aws_environment(settings, port=args.aws_port, start=True) as target:
        if target.server is None:
            return _needs_local_aws(settings, target)
        if not args.no_build:
            _build(settings, args.days, target)
        with advertise_local_aws(settings, target.endpoint):
            print(f"local AWS for this demo: {target.endpoint} (other pipepulse commands with the same config use it)")
            cmd = [sys.executable, "-m", "cli"]
            if settings.config_path:
                cmd += ["--config", str(settings.config_path)]
            cmd += ["dashboard", "serve", "--port", str(args.port)]
            # the served dashboard builds its settings from the environment: same dashboard_url
            proc = subprocess.Popen(cmd, env={**os.environ, "PIPEPULSE_DASHBOARD_URL": settings.dashboard_url})
            signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
            try:
                return proc.wait()
            except KeyboardInterrupt:
                proc.terminate()
                return proc.wait()
