from __future__ import annotations

import logging

import pytest


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    """Run ``pipepulse ARGS`` in-process against ``db_url``; returns (status, stdout, stderr).

    Works in an empty folder (no stray pipepulse.toml) and puts the root logger back afterwards,
    since the command configures logging.
    """
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    monkeypatch.chdir(tmp_path)
    for var in ("PIPEPULSE_CONFIG", "PIPEPULSE_LOG_LEVEL", "PIPEPULSE_LOG_FORMAT"):
        monkeypatch.delenv(var, raising=False)

    def run(db_url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        from cli.main import main

        monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    yield run
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
