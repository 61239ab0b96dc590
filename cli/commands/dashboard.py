"""``pipepulse dashboard``: serve the Streamlit dashboard, and make password hashes for its login.

Bound to a loopback address the dashboard has no login. Bound to any other address it needs one,
configured in Streamlit secrets (``.streamlit/secrets.toml``, or ``--secrets FILE``):

- passwords: ``[pipepulse.users.<name>]`` tables with ``password_hash`` (from
  ``pipepulse dashboard hash-password``) and ``role = "viewer" | "admin"``;
- or OpenID Connect: Streamlit's ``[auth]`` section (needs Authlib), with
  ``[pipepulse] admins = ["email", ...]``; other signed-in users are viewers.

``serve`` refuses to start on a non-loopback address without one of these; the rules are
``pipepulse.access``, which the app's login wall (``dashboard/auth.py``) applies too.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from pipepulse.access import auth_mode, hash_password, is_loopback
from pipepulse.errors import ConfigError, InputError
from pipepulse.settings import Settings

__all__ = ["register", "serve_command"]

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
# what `serve` runs: st.App around APP, with routes that answer deep links at once (see there)
SERVE = APP.with_name("serve.py")


# ---- the CLI -----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the web dashboard")
    dsub = p.add_subparsers(dest="dashboard_command", metavar="COMMAND")
    dsub.required = True
    serve = dsub.add_parser(
        "serve",
        help="run the dashboard (Streamlit); a login is required unless bound to localhost",
        description="Serve the dashboard. On 127.0.0.1/localhost there is no login; on any other "
        "address a login must be configured in the Streamlit secrets file, or it refuses to start.",
    )
    serve.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    serve.add_argument(
        "--secrets",
        metavar="FILE",
        help="Streamlit secrets file with the login (default: ./.streamlit/secrets.toml, then ~/.streamlit/secrets.toml)",
    )
    serve.add_argument("--dev", action="store_true", help="reload pages when their files change")
    serve.set_defaults(handler=cmd_serve)
    hp = dsub.add_parser("hash-password", help="print a password hash for [pipepulse.users.<name>] in secrets")
    hp.add_argument("--password-stdin", action="store_true", help="read the password from stdin instead of a prompt")
    hp.set_defaults(handler=cmd_hash_password)


def _secrets_file(given: str | None) -> Path | None:
    if given:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(f"secrets file {path} does not exist")
        return path
    for path in (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"):
        if path.is_file():
            return path
    return None


def _read_secrets(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def serve_command(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The ``streamlit run`` command line for ``args`` (checks the login rule first)."""
    secrets_path = _secrets_file(args.secrets)
    secrets = _read_secrets(secrets_path)
    mode = auth_mode(secrets)
    if not is_loopback(args.address) and mode is None:
        raise ConfigError(
            f"refusing to serve the dashboard on {args.address or 'every interface'} without a login: "
            "add users to the Streamlit secrets file ([pipepulse.users.<name>] with password_hash from "
            "`pipepulse dashboard hash-password` and role = \"viewer\" or \"admin\"), or configure "
            "OpenID Connect under [auth]; or bind to 127.0.0.1"
        )
    if mode == "oidc":
        import importlib.util

        if importlib.util.find_spec("authlib") is None:
            raise ConfigError("secrets [auth] configures OpenID Connect, which needs Authlib: pip install 'Authlib>=1.3.2'")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVE),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "auto" if args.dev else "none",
        "--server.runOnSave",
        "true" if args.dev else "false",
        "--client.toolbarMode",
        "minimal",
        # Streamlit runs gc.collect() after every script run by default, slow with pandas,
        # SQLAlchemy and plotly loaded. Python's own collector still runs.
        "--runner.postScriptGC",
        "false",
        # Magic (st.write of bare expressions) rewrites each page's syntax tree before compiling it,
        # and Streamlit drops its compiled scripts whenever the last browser tab disconnects (every
        # reload of a lone tab). No page relies on magic.
        "--runner.magicEnabled",
        "false",
        "--theme.base",
        "light",
    ]
    if secrets_path is not None:
        cmd += ["--secrets.files", str(secrets_path.resolve())]
    cmd.append("--")
    if settings.config_path is not None:
        cmd += ["--config", str(Path(settings.config_path).resolve())]
    return cmd


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    cmd = serve_command(args, settings)
    host = "localhost" if is_loopback(args.address) else args.address
    print(f"pipepulse dashboard on http://{host}:{args.port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # The child gets this process's environment as is, so it builds the same settings.
    proc = subprocess.Popen(cmd)

    def _stop(signum, _frame):
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise InputError("the two passwords differ")
    print(hash_password(password))
    return 0
