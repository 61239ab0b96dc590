from __future__ import annotations

import subprocess
import sys

import pytest

from cli.main import build_parser, main


def _commands(parser):
    """Every (sub)command path of the CLI, e.g. ('db', 'upgrade')."""
    import argparse

    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((name,))
                out.extend((name, *rest) for rest in _commands(sub))
    return out


def test_every_command_has_help(capsys):
    paths = _commands(build_parser())
    assert ("db", "upgrade") in paths and ("db", "status") in paths
    for path in paths:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: pipepulse " + " ".join(path)), path


def test_db_upgrade_then_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.delenv("PIPEPULSE_DATABASE_URL", raising=False)
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["db", "status"]) == 1
    assert "does not exist yet: run `pipepulse db upgrade`" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    from store.db import _head_from_files

    head = _head_from_files()  # the newest migration, whichever branch added it
    assert f"migrated (empty) -> {head}" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"already at schema {head}" in capsys.readouterr().out
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "runs" in out


def test_unreachable_database_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "db", "upgrade"],
        env={"PIPEPULSE_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pipepulse: error: cannot reach PostgreSQL at 127.0.0.1:1")


def test_bad_config_file_is_one_line(tmp_path):
    (tmp_path / "pipepulse.toml").write_text("[aws]\nregion = 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "db", "status"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "pipepulse: error: pipepulse.toml: [aws] region: expected str, got 3"


def test_the_command_line_starts_without_the_heavy_libraries():
    """cli/main.py's promise: command modules import only the floor, so `pipepulse --help` and the
    container's healthcheck do not pay for pandas, numpy, SQLAlchemy, boto3 or Streamlit (about
    2 s of imports together); each handler imports what it uses."""
    heavy = ("pandas", "numpy", "sqlalchemy", "boto3", "streamlit", "plotly")
    code = (
        "import sys; from cli.main import build_parser; build_parser(); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "", f"imported at start-up: {proc.stdout.strip()}"


def test_snooze_until_takes_a_time_or_a_span_from_now():
    from datetime import UTC, datetime, timedelta

    from cli.commands.anomalies import snooze_until
    from pipepulse.errors import InputError

    now = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    assert snooze_until("+8h", now) == now + timedelta(hours=8)
    assert snooze_until("+2d", now) == now + timedelta(days=2)
    assert snooze_until("2027-01-04T09:00", now) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # no offset: UTC
    assert snooze_until("2027-01-04T10:00+01:00", now) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    for bad in ("+0h", "+8m", "+h", "+1.5d", "next week", ""):
        with pytest.raises(InputError, match="span from now such as \\+8h"):
            snooze_until(bad, now)
