"""The one list of jobs: what it holds, that each entry runs, and that the scheduler and the CLI read it."""

from __future__ import annotations

import inspect

import pytest

from cli.main import main
from jobs.registry import JOBS, job
from pipepulse.cron import CronSchedule


def test_every_job_is_named_once_with_a_cron_a_description_and_a_run_function():
    assert [j.name for j in JOBS] == ["collect", "detect", "forecast", "alerts_immediate", "digest_daily", "digest_weekly",
                                   "retention", "backup"]
    for j in JOBS:
        CronSchedule(j.cron)  # a valid 5-field expression
        assert j.description
        params = inspect.signature(j.function()).parameters
        assert list(params)[:2] == ["settings", "engine"], j.name
        assert params["now"].kind is inspect.Parameter.KEYWORD_ONLY, j.name
    assert job("digest_weekly").options == {"period": "weekly"}
    with pytest.raises(KeyError, match="no job 'nope'; known: collect, detect"):
        job("nope")


def test_a_job_runs_through_the_registry(engine, make_settings, now):
    settings = make_settings("[collectors]\nsources = []\n")
    assert job("retention").run(settings, engine, now=now) == {
        "metric_points": 0, "run_logs": 0, "run_steps": 0, "collector_runs": 0, "notifications": 0}
    assert job("collect").run(settings, engine, now=now).passes == []


def test_schedule_list_prints_the_registry_as_configured(db_url, tmp_path, monkeypatch, capsys):
    config = tmp_path / "pipepulse.toml"
    config.write_text('[collectors]\nsources = ["reference", "ce"]\n[collectors.ce]\ncron = "0 */4 * * *"\n'
                      '[schedule]\ndetect = "*/30 * * * *"\nretention = ""\nalerts_immediate = ""\nbackup = ""\n')
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    assert main(["--config", str(config), "schedule", "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "reference      */5 * * * *      collector source (the collect job)",
        "ce             0 */4 * * *      collector source (the collect job)",
        "detect         */30 * * * *     anomaly detection over the stored metrics, runs and cost; incidents stored by fingerprint",
        "forecast       0 6 * * *        spend forecasts (total and budgeted pipelines) with their backtests, stored as snapshots",
        "digest_daily   0 8 * * *        the daily alert digest: new failures, late runs, anomalies, spend",
        "digest_weekly  0 8 * * 1        the weekly alert digest",
    ]


def test_schedule_list_keeps_its_columns_with_a_long_job_name(db_url, tmp_path, monkeypatch, capsys):
    # alerts_immediate (16 characters) ran past the 14-character name column
    config = tmp_path / "pipepulse.toml"
    config.write_text('[collectors]\nsources = ["ce"]\n')
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    assert main(["--config", str(config), "schedule", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert "alerts_immediate" in names
    # the name column is as wide as the longest name and two spaces (as before, at 14), so every
    # cron and every description starts in the same column
    w = len("alerts_immediate") + 2
    for line, name in zip(lines, names, strict=True):
        cron = " ".join(line.split()[1:6])
        assert line[:w] == f"{name:<{w}}" and line[w:w + 17] == f"{cron:<16} " and line[w + 17] != " ", line
