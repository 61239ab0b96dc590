"""Issue #21's CLI findings: each is one line saying what to do, never a traceback."""

from __future__ import annotations

import io
import socket
import sys

import pytest

from cli.main import main


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "data"))
    for k in ("PIPEPULSE_CONFIG", "PIPEPULSE_DATABASE_URL", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


class _ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone, as `pipepulse db status | head` leaves it."""

    def __init__(self, path):
        self._file = open(path, "w")  # noqa: SIM115 - closed by the test

    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        return self._file.fileno()


def test_a_closed_pipe_stops_quietly(data, monkeypatch, capsys):
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    pipe = _ClosedPipe(data / "sink")
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["db", "status"]) == 141
    pipe._file.close()
    assert capsys.readouterr().err == ""


def test_a_sqlite_url_with_two_slashes_says_how_to_write_it(data, monkeypatch, capsys):
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", "sqlite://data/x.db")
    assert main(["db", "status"]) == 1
    assert capsys.readouterr().err == (
        "pipepulse: error: (environment): database URL sqlite://data/x.db: a SQLite URL has three slashes before a "
        "relative path and four before an absolute one: write sqlite:///data/x.db (or sqlite:////data/x.db for /data/x.db)\n"
    )


def test_hash_password_from_a_pipe_points_at_password_stdin(data, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    assert main(["dashboard", "hash-password"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pipepulse: error: standard input is not a terminal, so the password cannot be typed twice: "
                          "give the password on standard input with --password-stdin")
    assert err.count("\n") == 1


def test_collect_without_any_aws_says_what_to_configure(data, capsys):
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["collect"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pipepulse: error: no AWS is configured")
    assert "no AWS credentials, no endpoint, and no demo running in the data folder " in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [["dashboard", "serve"], ["demo", "up"]])
def test_a_busy_port_fails_at_once(data, capsys, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main([*command, "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (f"pipepulse: error: port {port} on 127.0.0.1 is already in use (another dashboard or demo?): "
                   f"stop it, or pick a free port with --port, e.g. --port {port + 1}\n")
    assert not (data / "data").exists()  # nothing was built


def test_demo_up_links_follow_the_port():
    from cli.commands.demo import _follow_port
    from pipepulse.settings import Settings

    s = Settings(database_url="sqlite://", data_dir=".", dashboard_url="http://localhost:8501")
    assert _follow_port(s, 8600).dashboard_url == "http://localhost:8600"
    assert _follow_port(s, 8501) is s
    far = Settings(database_url="sqlite://", data_dir=".", dashboard_url="https://pipepulse.example.com")
    assert _follow_port(far, 8600) is far


def test_costs_daily_takes_days_relative_to_today(data, capsys):
    """The README's demo block asks for the last 30 days whatever the date (`--from today-30`)."""
    from datetime import UTC, datetime, timedelta

    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    today = datetime.now(UTC).date()
    assert main(["costs", "daily", "--from", "today-30", "--to", "today"]) == 0
    assert capsys.readouterr().out == f"no cost stored between {today - timedelta(days=30)} and {today}\n"
    assert main(["costs", "daily", "--from", "today+3", "--to", "today"]) == 1
    assert "use YYYY-MM-DD, today or today-N" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_demo_progress_bar_is_plain_lines_off_a_terminal():
    """In a log or CI (not a terminal) the demo's bar is a plain line at each tenth, no \\r."""
    from cli.commands.demo import _bar_printer
    from devkit.demo import bar_line

    out = io.StringIO()
    draw = _bar_printer(out)
    for done in range(1, 91):
        draw(bar_line("demo [1/8] pipeline backfill", done, 90, "days", done / 10), done, 90)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert len(lines) == 11 and all(line.isprintable() for line in lines)
    assert lines[0] == "demo [1/8] pipeline backfill [" + "." * 30 + "] 1/90 days, 0 s"
    assert lines[-1] == "demo [1/8] pipeline backfill [" + "#" * 30 + "] 90/90 days, 9 s"
    tty = _Terminal()
    draw = _bar_printer(tty)
    for done in (1, 2):
        draw(bar_line("demo [5/8] collect", done, 2, "sources", 0.0), done, 2)
    assert tty.getvalue() == ("\rdemo [5/8] collect [" + "#" * 15 + "." * 15 + "] 1/2 sources, 0 s"
                              "\rdemo [5/8] collect [" + "#" * 30 + "] 2/2 sources, 0 s\n")


@pytest.mark.parametrize(("kind", "says"), [
    ("local", "another demo is running on this data folder"),
    ("endpoint", "an AWS endpoint is configured (http://127.0.0.1:5000"),
    ("aws", "AWS credentials are configured (or PIPEPULSE_LOCAL_AWS / [aws] local is false)"),
])
def test_a_demo_without_its_own_local_aws_names_what_is_set(capsys, kind, says):
    """Issue #21: a second `demo up` told the user to unset variables they never set."""
    from types import SimpleNamespace

    from cli.commands.demo import _needs_local_aws
    from pipepulse.settings import Settings

    s = Settings(database_url="sqlite://", data_dir="data/demo")
    assert _needs_local_aws(s, SimpleNamespace(kind=kind, endpoint="http://127.0.0.1:5000")) == 1
    err = capsys.readouterr().err
    assert err.startswith("pipepulse: error: ") and says in err and err.count("\n") == 1
    assert "unset" not in err
