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
    from alembic.script import ScriptDirectory

    from store.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
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
