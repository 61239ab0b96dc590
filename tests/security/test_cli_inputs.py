"""Hostile or broken inputs to the CLI get one line naming the file, line or field, never a
traceback, and memory stays bounded. Findings of issue #19 replayed here: a non-UTF-8 config,
deeply nested TOML arrays, a database URL with a non-numeric port, forecast dates near 9999,
``forecast --horizon 2000000`` (killed by the kernel at 20 GB), a binary file to
``anomalies scan``. (Cost-file inputs are issue #22's importers.)
"""

from __future__ import annotations

import pytest

from cli.main import main


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert rc == 1, (rc, captured.out, captured.err)
    assert len(lines) == 1 and lines[0].startswith("pipepulse: error: "), captured.err
    return lines[0]


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_config_that_is_not_utf8(env, capsys):
    cfg = env / "latin1.toml"
    cfg.write_bytes(b'[pipepulse]\ncurrency = "\xe9uro"\n')
    line = _one_line_error(capsys, ["--config", str(cfg), "db", "status"])
    assert line == f"pipepulse: error: {cfg}: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"


def test_deeply_nested_toml_arrays(env, capsys):
    cfg = env / "deep.toml"
    cfg.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    line = _one_line_error(capsys, ["--config", str(cfg), "db", "status"])
    assert line == f"pipepulse: error: {cfg}: nested too deeply to read (arrays or tables inside each other); flatten it"


def test_a_secrets_file_that_is_not_utf8_or_nested_too_deep(env, capsys):
    for name, body in (("s1.toml", b"[pipepulse]\nadmins = ['\xff']\n"), ("s2.toml", b"x = " + b"[" * 50_000 + b"]" * 50_000)):
        (env / name).write_bytes(body)
        line = _one_line_error(capsys, ["dashboard", "serve", "--secrets", str(env / name)])
        assert line.startswith(f"pipepulse: error: {env / name}: "), line


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://pp:s3cretpw@db.internal:notaport/pipepulse",
     "database URL postgresql+psycopg://pp:***@db.internal:notaport/pipepulse: port 'notaport' is not a number"),
    ("pp:s3cretpw@db.internal/pipepulse", "database url 'pp:***@db.internal/pipepulse' is not a URL"),
    ("postgresql+psycopg://pp:s3c@ret@127.0.0.1:1/pipepulse",
     "database URL postgresql+psycopg://pp:***@127.0.0.1:1/pipepulse: the password holds an unencoded '@'; write it as %40"),
])
def test_database_urls_are_reported_masked(env, capsys, monkeypatch, url, shown):
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", url)
    line = _one_line_error(capsys, ["db", "status"])
    assert shown in line
    assert "s3cret" not in line and "ret@" not in line


def _daily(path, days: list[str]) -> None:
    path.write_text("date,amount\n" + "".join(f"{d},{i + 1}.5\n" for i, d in enumerate(days)))


def test_forecast_dates_near_9999(env, capsys):
    spend = env / "late.csv"
    _daily(spend, ["9999-12-29", "9999-12-30", "9999-12-31"])
    line = _one_line_error(capsys, ["forecast", str(spend), "--horizon", "5", "--today", "9999-12-31"])
    assert line == (f"pipepulse: error: {spend}, line 4: date 9999-12-31 leaves no room for a 5-day forecast "
                    "(the calendar ends on 9999-12-31)")


def test_forecast_history_spanning_the_calendar_is_bounded(env, capsys):
    spend = env / "wide.csv"
    _daily(spend, ["0001-01-01", "9999-12-30"])
    line = _one_line_error(capsys, ["forecast", str(spend), "--horizon", "1", "--fill-missing", "--today", "9999-12-31"])
    assert line.startswith(f"pipepulse: error: {spend}, line 3: the file spans ")
    assert "at most 3,660 days" in line


def test_forecast_horizon_is_bounded(env, capsys):
    spend = env / "ok.csv"
    _daily(spend, ["2026-11-01", "2026-11-02"])
    line = _one_line_error(capsys, ["forecast", str(spend), "--horizon", "2000000"])
    assert line == "pipepulse: error: --horizon 2000000 is too far: at most 366 days"


def test_a_binary_file_to_anomalies_scan(env, capsys):
    blob = env / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 64)
    line = _one_line_error(capsys, ["anomalies", "scan", str(blob)])
    assert line.startswith(f"pipepulse: error: {blob}: not a UTF-8 text file")
    nul = env / "nul.csv"
    nul.write_bytes(b"timestamp,value\n2026-01-01 00:00:00,1\x00\x00\n")
    line = _one_line_error(capsys, ["anomalies", "scan", str(nul)])
    assert line.startswith(f"pipepulse: error: {nul} line 2: ")


def test_anomalies_scan_refuses_more_points_than_its_stated_limit(env, capsys, monkeypatch):
    import cli.commands.anomalies as cmd

    monkeypatch.setattr(cmd, "MAX_POINTS", 50)
    series = env / "long.csv"
    series.write_text("timestamp,value\n" + "".join(f"2026-01-01 00:{i // 60:02d}:{i % 60:02d},{i}\n" for i in range(60)))
    line = _one_line_error(capsys, ["anomalies", "scan", str(series)])
    assert line == (f"pipepulse: error: {series} line 52: more than 50 points; split the file "
                    "(the scan reads at most 50: --max-points raises it, at about 6 KB a point)")
    assert main(["anomalies", "scan", str(series), "--max-points", "60", "--out", str(env / "o.csv")]) == 0


def test_a_huge_field_is_one_line(env, capsys):
    spend = env / "huge.csv"
    spend.write_text("date,amount\n2026-11-01," + "9" * 200_000 + "\n")
    line = _one_line_error(capsys, ["forecast", str(spend), "--horizon", "3"])
    assert line.startswith(f"pipepulse: error: {spend}, line 2: ")
