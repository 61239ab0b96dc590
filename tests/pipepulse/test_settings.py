from __future__ import annotations

from pathlib import Path

import pytest

from pipepulse.errors import ConfigError
from pipepulse.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipepulse.toml"
    path.write_text(text)
    return path


def test_defaults_work_on_a_laptop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.database_url == "sqlite:///data/pipepulse.db"
    assert s.config_path is None
    assert s.local_aws is True
    assert s.aws_region == "us-east-1"
    assert s.prices.glue_dpu_hour == 0.44
    assert s.pipelines == ()


def test_environment_wins_over_file(tmp_path):
    cfg = write(tmp_path, '[database]\nurl = "sqlite:///from-file.db"\n[aws]\nregion = "eu-west-1"\n')
    s = load_settings({"PIPEPULSE_DATABASE_URL": "postgresql+psycopg://u@h:5432/d"}, config_path=cfg)
    assert s.database_url == "postgresql+psycopg://u@h:5432/d"
    assert s.aws_region == "eu-west-1"


def test_credentials_or_endpoint_turn_local_aws_off():
    assert load_settings({"AWS_PROFILE": "prod"}).local_aws is False
    assert load_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}).local_aws is False
    assert load_settings({"AWS_PROFILE": "prod", "PIPEPULSE_LOCAL_AWS": "yes"}).local_aws is True


def test_demo_config_parses():
    s = load_settings({}, config_path=Path(__file__).parents[2] / "examples" / "demo.toml")
    names = [p.name for p in s.pipelines]
    assert names == ["orders", "clickstream", "finance_daily", "partner_feed", "sfn_customer_etl", "glue_nightly"]
    orders = s.pipeline("orders")
    assert orders is not None and orders.schedule == "0 * * * *" and orders.freshness_sla_seconds == 90 * 60
    assert s.pipeline("clickstream").interval_seconds == 3600
    assert s.budget_monthly == 2600.0
    assert s.budgets_by_pipeline == {"orders": 260.0, "clickstream": 200.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[aws]\nregion = 5\n', r"pipepulse\.toml: \[aws\] region: expected str, got 5"),
        ('[[pipelines]]\nname = "a"\nschedule = "every hour"\n', r"\[pipelines a\] schedule: 'every hour' is not a 5-field cron"),
        ('[[pipelines]]\nname = "a"\nsource = "airflo"\n', r"\[pipelines a\] source: expected reference, stepfunctions, glue or airflow, got 'airflo'"),
        ('[[pipelines]]\nname = "a"\n[[pipelines]]\nname = "a"\n', r"\[\[pipelines\]\] 'a' is defined twice"),
        ('[[pipelines]]\nname = "a"\nfreshnes_sla_minutes = 5\n', r"pipepulse\.toml:3: \[pipelines\] freshnes_sla_minutes: unknown key; did you mean freshness_sla_minutes\?"),
        ('[[pipelines]]\nname = "a"\ninterval_minutes = 0\n', r"interval_minutes: expected a positive whole number"),
        ('[prices]\nglue_dpu_hour = "cheap"\n', r"\[prices\] glue_dpu_hour: expected a non-negative number, got 'cheap'"),
        ('[prices]\nglue_dpu_hours = 1\n', r"pipepulse\.toml:2: \[prices\] glue_dpu_hours: unknown key; did you mean glue_dpu_hour\?"),
        ('[budgets.pipelines]\norders = -5\n', r"\[budgets.pipelines\] orders: expected a non-negative number, got -5"),
        ('[budgets]\nmonthly = -5\n', r"\[budgets\] monthly: expected a non-negative number \(the month's budget\), got -5"),
        ('[database]\nurl = "not a url"\n', r"database url 'not a url' is not a URL"),
        ('pipelines = "x"\n', r"pipelines must be an array of tables"),
        ("[aws\nregion='x'\n", r"pipepulse\.toml: not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path, text, message):
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, config_path=cfg)


def test_missing_config_file_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist; create it or unset PIPEPULSE_CONFIG$"):
        load_settings({"PIPEPULSE_CONFIG": str(tmp_path / "nope.toml")})
    # given with --config: the variable is not to blame; a folder is told from a missing file
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist; give a config file's path$"):
        load_settings({}, config_path=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a folder, not a file; give a config file's path$"):
        load_settings({}, config_path=tmp_path)


def test_bad_environment_values_named():
    with pytest.raises(ConfigError, match="PIPEPULSE_LOCAL_AWS: expected true or false, got 'maybe'"):
        load_settings({"PIPEPULSE_LOCAL_AWS": "maybe"})
    with pytest.raises(ConfigError, match="PIPEPULSE_LOG_LEVEL"):
        load_settings({"PIPEPULSE_LOG_LEVEL": "LOUD"})
    with pytest.raises(ConfigError, match="PIPEPULSE_BUDGET_MONTHLY: expected a number"):
        load_settings({"PIPEPULSE_BUDGET_MONTHLY": "lots"})
    with pytest.raises(ConfigError, match="PIPEPULSE_BUDGET_MONTHLY: expected a non-negative number, got '-5'"):
        load_settings({"PIPEPULSE_BUDGET_MONTHLY": "-5"})
