"""``pipepulse dashboard``: the login rule at start-up, the streamlit command line, password hashes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dash_paths import DEMO_CONFIG, ROOT

from cli.commands.dashboard import serve_command
from cli.main import build_parser
from pipepulse.access import auth_mode, hash_password, is_loopback, verify_password
from pipepulse.errors import ConfigError
from pipepulse.settings import load_settings


def _args(*argv: str):
    return build_parser().parse_args(["dashboard", "serve", *argv])


def test_password_hash_round_trip_and_rejects_others():
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert not verify_password("s3cret", "not-a-hash")
    assert hash_password("x", salt=b"a" * 16) == hash_password("x", salt=b"a" * 16)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("", False), (None, False), ("10.0.0.5", False), ("::", False), ("example.com", False)],
)
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_auth_mode_reads_users_or_oidc():
    assert auth_mode({}) is None
    assert auth_mode({"pipepulse": {"users": {"a": {"password_hash": hash_password("p"), "role": "admin"}}}}) == "password"
    assert auth_mode({"auth": {"redirect_uri": "https://x/oauth2callback", "cookie_secret": "k"}}) == "oidc"
    with pytest.raises(ConfigError, match="role: expected viewer or admin"):
        auth_mode({"pipepulse": {"users": {"a": {"password_hash": hash_password("p"), "role": "root"}}}})
    with pytest.raises(ConfigError, match="hash-password"):
        auth_mode({"pipepulse": {"users": {"a": {"password_hash": "plain"}}}})


def test_serve_refuses_a_public_address_without_login(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(env={}, config_path=DEMO_CONFIG)
    with pytest.raises(ConfigError, match="refusing to serve the dashboard on 0.0.0.0 without a login"):
        serve_command(_args("--address", "0.0.0.0"), settings)


def test_serve_command_on_a_public_address_with_users(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[pipepulse.users.ann]\npassword_hash = "{hash_password("pw")}"\nrole = "admin"\n')
    settings = load_settings(env={}, config_path=DEMO_CONFIG)
    # off loopback it also needs the names users reach it by
    with pytest.raises(ConfigError, match=r"set \[dashboard\] allowed_hosts \(or --allowed-host dash.example.com\)"):
        serve_command(_args("--address", "0.0.0.0", "--port", "9000", "--secrets", str(secrets)), settings)
    cmd = serve_command(_args("--address", "0.0.0.0", "--port", "9000", "--secrets", str(secrets),
                              "--allowed-host", "Dash.Example.com", "--trusted-proxy", "10.0.0.0/16"), settings)
    joined = " ".join(cmd)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/serve.py")  # st.App around app.py
    for pair in ("--server.address 0.0.0.0", "--server.port 9000", "--server.headless true",
                 "--browser.gatherUsageStats false", "--server.fileWatcherType none", f"--secrets.files {secrets}",
                 "--runner.magicEnabled false"):
        assert pair in joined
    # the access policy goes to the served process after --
    assert cmd[cmd.index("--"):] == ["--", "--config", str(DEMO_CONFIG.resolve()), "--auth", "password", "--bind", "0.0.0.0",
                                     "--allowed-host", "dash.example.com", "--trusted-proxy", "10.0.0.0/16"]


def test_cli_exits_with_a_clear_message(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(DEMO_CONFIG), "dashboard", "serve", "--address", "0.0.0.0"],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without a login" in out.stderr


def test_hash_password_command_reads_stdin():
    out = subprocess.run(
        [sys.executable, "-m", "cli", "dashboard", "hash-password", "--password-stdin"],
        input="a long pass phrase\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert verify_password("a long pass phrase", out.stdout.strip())


def test_no_dashboard_script_relies_on_magic():
    """serve runs Streamlit with magic off: a bare expression in a page (``df`` on a line of its
    own, to show it) would silently show nothing. Every expression statement is a call, an await
    or a docstring."""
    import ast

    scripts = [ROOT / "dashboard" / "app.py", ROOT / "dashboard" / "serve.py", *sorted((ROOT / "dashboard" / "views").glob("*.py"))]
    assert len(scripts) >= 8
    for path in scripts:
        tree = ast.parse(path.read_text(), filename=str(path))
        docstrings = {id(n.body[0]) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and id(node) not in docstrings:
                assert isinstance(node.value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)), f"{path.name}:{node.lineno} needs magic"


def test_serve_waits_on_the_server_in_a_small_process(tmp_path):
    """Once its checks pass, ``dashboard serve`` becomes ``cli.supervise`` (same process id, so a
    SIGTERM to it still stops the server cleanly): the process that waits does not hold the
    command line's pandas, pyarrow, SQLAlchemy and boto3 (166 MB resident) for the server's life."""
    import signal
    import socket
    import threading
    import time
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "--config", str(DEMO_CONFIG), "dashboard", "serve", "--port", str(port)],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stderr or ()), daemon=True)
    reader.start()
    ready = f"pipepulse dashboard on http://localhost:{port} (Ctrl-C to stop)"
    try:
        deadline = time.monotonic() + 90
        while not any(ready in line for line in said):  # said once the server listens
            assert proc.poll() is None, "".join(said)
            assert time.monotonic() < deadline, f"the dashboard did not listen within 90 s: {''.join(said)}"
            time.sleep(0.2)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", b"cli.supervise"]
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        for heavy in ("/pandas/", "/pyarrow/", "/sqlalchemy/", "/numpy/"):
            assert heavy not in maps, f"the waiting process loaded {heavy.strip('/')}"
        status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if ":" in line)
        assert int(status["VmRSS"].split()[0]) < 60_000  # kB; 166 MB before
        children = [int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        assert len(children) == 1 and b"streamlit" in Path(f"/proc/{children[0]}/cmdline").read_bytes()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not Path(f"/proc/{children[0]}").exists() or b"zombie" in Path(f"/proc/{children[0]}/status").read_bytes().lower()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
