"""``pipepulse dashboard``: serve the Streamlit dashboard, make password hashes for its login,
and read its audit log.

The login (``--auth`` or ``[dashboard] auth``; by default the one the secrets configure, else
none) is configured in Streamlit secrets (``.streamlit/secrets.toml``, or ``--secrets FILE``):

- ``password``: ``[pipepulse.users.<name>]`` tables with ``password_hash`` (from
  ``pipepulse dashboard hash-password``) and ``role = "viewer" | "admin"``;
- ``oidc``: Streamlit's ``[auth]`` section (needs Authlib), with ``[pipepulse] allowed_domains =
  [...]`` (only verified emails of these get in), ``admins = ["email", ...]`` and/or
  ``admin_groups = [...]`` (a group claim, ``groups_claim``, default ``groups``);
- ``none``: only on a loopback address, and only for requests to a local name without proxy
  headers (``pipepulse.access``).

``serve`` checks the whole access policy (``pipepulse.access.AccessPolicy``: auth, the allowed
host names, the trusted proxies) before it starts and hands it to the served process, whose
request guard and login apply it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pipepulse.access import (
    AUTH_MODES,
    AccessPolicy,
    access_config,
    auth_mode,
    hash_password,
    is_loopback,
    normalise_host,
    oidc_rules,
    parse_networks,
    password_problem,
    password_users,
    policy_args,
)
from pipepulse.errors import ConfigError, InputError
from pipepulse.settings import Settings, read_toml

__all__ = ["access_policy", "register", "serve_command"]

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
        description="Serve the dashboard. On 127.0.0.1/localhost it may run without a login (for local "
        "names only, never through a proxy); on any other address a login must be configured in the "
        "Streamlit secrets file and the names users reach it by listed, or it refuses to start.",
    )
    serve.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    serve.add_argument(
        "--secrets",
        metavar="FILE",
        help="Streamlit secrets file with the login (default: ./.streamlit/secrets.toml, then ~/.streamlit/secrets.toml)",
    )
    serve.add_argument("--auth", choices=AUTH_MODES,
                       help="login: none (loopback only), password or oidc (default: [dashboard] auth, else what the secrets configure)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a name users reach the dashboard by, besides localhost (repeatable; adds to [dashboard] allowed_hosts)")
    serve.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                       help="a proxy (address or network) whose X-Forwarded-For is believed (repeatable; needs a login)")
    serve.add_argument("--dev", action="store_true", help="reload pages when their files change")
    serve.set_defaults(handler=cmd_serve)
    hp = dsub.add_parser("hash-password", help="print a password hash for [pipepulse.users.<name>] in secrets")
    hp.add_argument("--password-stdin", action="store_true", help="read the password from stdin instead of a prompt")
    hp.set_defaults(handler=cmd_hash_password)
    au = dsub.add_parser("audit", help="the dashboard's audit log: sign-ins (failed and locked ones too) and admin actions")
    au.add_argument("--limit", type=int, default=50, help="newest N entries (default 50)")
    au.add_argument("--actor", help="only this user name")
    au.set_defaults(handler=cmd_audit)


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
    return {} if path is None else read_toml(path, "secrets file")


def access_policy(args: argparse.Namespace, settings: Settings, secrets: dict[str, Any]) -> AccessPolicy:
    """The access policy ``serve`` runs with: flags over ``[dashboard]``, checked against the
    bind address and the secrets (a ConfigError says what to fix)."""
    cfg = access_config(settings.section("dashboard"), settings.config_label)
    configured = auth_mode(secrets)
    auth = args.auth or cfg.auth or configured or "none"
    if auth == "none" and not is_loopback(args.address) and configured is None:
        raise ConfigError(
            f"refusing to serve the dashboard on {args.address or 'every interface'} without a login: "
            "add users to the Streamlit secrets file ([pipepulse.users.<name>] with password_hash from "
            "`pipepulse dashboard hash-password` and role = \"viewer\" or \"admin\"), or configure "
            "OpenID Connect under [auth]; or bind to 127.0.0.1"
        )
    policy = AccessPolicy(
        auth=auth,
        bind=args.address,
        allowed_hosts=tuple(dict.fromkeys([*cfg.allowed_hosts, *(normalise_host(h, "--allowed-host") for h in args.allowed_host)])),
        trusted_proxies=parse_networks([*cfg.trusted_proxies, *args.trusted_proxy], "trusted proxies"),
    )
    problem = policy.problem()
    if problem:
        raise ConfigError(f"refusing to serve the dashboard: {problem}")
    if auth == "password" and not password_users(secrets):
        raise ConfigError("auth = \"password\" needs users in the Streamlit secrets file: [pipepulse.users.<name>] with "
                          "password_hash from `pipepulse dashboard hash-password` and role = \"viewer\" or \"admin\"")
    if auth == "oidc":
        import importlib.util

        if configured != "oidc":
            raise ConfigError("auth = \"oidc\" needs Streamlit's [auth] section (redirect_uri, cookie_secret, client_id, ...) in the secrets file")
        oidc_rules(secrets)
        if importlib.util.find_spec("authlib") is None:
            raise ConfigError("secrets [auth] configures OpenID Connect, which needs Authlib: pip install 'Authlib>=1.3.2'")
    return policy


def serve_command(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The ``streamlit run`` command line for ``args`` (checks the access policy first)."""
    secrets_path = _secrets_file(args.secrets)
    secrets = _read_secrets(secrets_path)
    policy = access_policy(args, settings, secrets)
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
    return cmd + policy_args(policy)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from cli.ports import port_problem

    cmd = serve_command(args, settings)
    problem = port_problem(args.address, args.port)
    if problem:
        raise InputError(problem)
    host = "localhost" if is_loopback(args.address) else args.address
    # The child gets this process's environment, so it builds the same settings; but uvicorn's
    # own X-Forwarded-For handling is off (an empty FORWARDED_ALLOW_IPS), because it would rewrite
    # the client of every request from 127.0.0.1 before the request guard sees who connected
    # (dashboard/guard.py applies the trusted proxies itself).
    env = {**os.environ, "FORWARDED_ALLOW_IPS": ""}
    # This process has every command's modules loaded (~166 MB); it becomes a small supervisor
    # (cli/supervise.py: the standard library only) that starts the server and waits on it.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "cli.supervise", args.address, str(args.port), host, "--", *cmd], env)
    return 1  # not reached: execve returns only by raising


def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        pipe_hint = "give the password on standard input with --password-stdin (e.g. `pipepulse dashboard hash-password --password-stdin < file`)"
        if not sys.stdin.isatty():
            raise InputError(f"standard input is not a terminal, so the password cannot be typed twice: {pipe_hint}")
        try:
            password = getpass.getpass("password: ")
            again = getpass.getpass("again: ")
        except EOFError:
            raise InputError(f"no password typed (end of input): {pipe_hint}") from None
        if again != password:
            raise InputError("the two passwords differ")
    problem = password_problem(password)
    if problem:
        raise InputError(problem)
    print(hash_password(password))
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from store.audit import recent
    from store.db import check_schema, connect

    engine = connect(settings.database_url, create_dirs=False)
    try:
        check_schema(engine)
        with engine.connect() as conn:
            rows = recent(conn, limit=args.limit, actor=args.actor)
    finally:
        engine.dispose()
    if not rows:
        print("the audit log is empty")
        return 0
    for r in rows:
        print(f"{r['at']:%Y-%m-%d %H:%M:%S}Z  {r['action']:<22} {r['outcome']:<7} {r['actor'] or '-':<24} "
              f"{r['client'] or '-':<16} {r['target'] or ''}  {r['detail'] or ''}".rstrip())
    return 0
