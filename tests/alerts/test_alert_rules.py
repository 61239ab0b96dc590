"""The ``[alerts]`` config: rules and delivery settings, and the errors a user sees."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules import KINDS, Rule, load_alert_config
from pipepulse.errors import ConfigError
from pipepulse.settings import load_settings


def settings_from(tmp_path, text: str):
    path = tmp_path / "pipepulse.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings({}, config_path=path)


FULL = """
[pipepulse]
dashboard_url = "https://pipepulse.example.com/"

[alerts]
channel = "ses"
sender = "Pipepulse <alerts@example.com>"
suppression_hours = 6
send_all_clear = true

[alerts.smtp]
host = "smtp.example.com"
security = "ssl"
username = "pp"
password = "pw"

[alerts.ses]
region = "eu-west-1"

[[alerts.rules]]
name = "failures"
kind = "failed_runs"
recipients = ["oncall@example.com", "Data Team <data@example.com>"]
frequency = "immediate"
pipelines = ["orders"]

[[alerts.rules]]
name = "success"
kind = "success_rate"
threshold = 0.9
window_hours = 12
recipients = "lead@example.com"
suppression_hours = 1

[[alerts.rules]]
name = "abnormal"
kind = "anomalies"
min_severity = "high"
recipients = ["oncall@example.com"]
frequency = "weekly"

[[alerts.rules]]
name = "budget"
kind = "budget"
tolerance = 0.05
recipients = ["finops@example.com"]

[[alerts.rules]]
name = "collectors"
kind = "collector_failing"
min_failures = 3
recipients = ["platform@example.com"]
"""


def test_a_full_section_parses(tmp_path):
    cfg = load_alert_config(settings_from(tmp_path, FULL))
    assert (cfg.channel, cfg.sender, cfg.suppression, cfg.send_all_clear) == (
        "ses", "Pipepulse <alerts@example.com>", timedelta(hours=6), True)
    assert cfg.dashboard_url == "https://pipepulse.example.com"
    assert (cfg.smtp.host, cfg.smtp.port, cfg.smtp.security, cfg.smtp.username, cfg.smtp.password) == (
        "smtp.example.com", 465, "ssl", "pp", "pw")
    assert cfg.ses.region == "eu-west-1"
    assert cfg.rules == (
        Rule(name="failures", kind="failed_runs", recipients=("oncall@example.com", "Data Team <data@example.com>"),
             frequency="immediate", pipelines=("orders",)),
        Rule(name="success", kind="success_rate", recipients=("lead@example.com",), threshold=0.9,
             window=timedelta(hours=12), suppression=timedelta(hours=1)),
        Rule(name="abnormal", kind="anomalies", recipients=("oncall@example.com",), frequency="weekly", min_severity="high"),
        Rule(name="budget", kind="budget", recipients=("finops@example.com",), tolerance=0.05),
        Rule(name="collectors", kind="collector_failing", recipients=("platform@example.com",), min_failures=3),
    )
    assert [r.name for r in cfg.rules_for("daily")] == ["success", "budget", "collectors"]
    assert cfg.suppression_for(cfg.rules[1]) == timedelta(hours=1)
    assert cfg.suppression_for(cfg.rules[0]) == timedelta(hours=6)
    assert "pw" not in repr(cfg.smtp)  # the password never shows in logs


def test_defaults_without_a_section(tmp_path):
    cfg = load_alert_config(settings_from(tmp_path, "[pipepulse]\n"))
    assert (cfg.channel, cfg.smtp.port, cfg.smtp.security, cfg.suppression, cfg.rules) == (
        "smtp", 587, "starttls", timedelta(hours=24), ())


def test_a_malformed_recipient_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:  # rules are checked when the config is read
        settings_from(tmp_path, """
[[alerts.rules]]
name = "failures"
kind = "failed_runs"
recipients = ["oncall@example.com", "oncall@@example", "x@example.com"]
""")
    assert str(err.value) == (
        f"{tmp_path / 'pipepulse.toml'}: [[alerts.rules]] 'failures' recipients: 'oncall@@example' is not an email "
        'address (expected e.g. oncall@example.com or "On-call <oncall@example.com>")'
    )


@pytest.mark.parametrize("bad", ["team", "a b@example.com", "<x@example.com", "x@localhost", ""])
def test_other_malformed_addresses(tmp_path, bad):
    with pytest.raises(ConfigError, match=f"recipients: {bad!r} is not an email address"):
        settings_from(tmp_path, f'[[alerts.rules]]\nname = "r"\nkind = "budget"\nrecipients = ["{bad}"]\n')


def test_an_unknown_kind_names_the_rule_and_the_kinds(tmp_path):
    with pytest.raises(ConfigError) as err:
        settings_from(tmp_path, '[[alerts.rules]]\nname = "late stuff"\nkind = "lateness"\nrecipients = ["a@example.com"]\n')
    assert str(err.value) == (
        f"{tmp_path / 'pipepulse.toml'}: [[alerts.rules]] 'late stuff': unknown kind 'lateness'; expected one of "
        "failed_runs, freshness, success_rate, anomalies, budget, collector_failing"
    )
    assert KINDS == ("failed_runs", "freshness", "success_rate", "anomalies", "budget", "collector_failing")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('channel = "pigeon"', "[alerts] channel: expected smtp or ses, got 'pigeon'"),
        ('sender = "nobody"', "[alerts] sender: 'nobody' is not an email address"),
        ("suppression_hours = -1", "[alerts] suppression_hours: expected zero or more hours, got -1"),
        ("smtp_host = 'x'", "[alerts] smtp_host: unknown key; did you mean smtp?"),
        ('[alerts.smtp]\nsecurity = "tls"', "[alerts.smtp] security: expected starttls, ssl or none, got 'tls'"),
        ("[alerts.smtp]\nport = 70000", "[alerts.smtp] port: expected 1-65535, got 70000"),
        ('[alerts.smtp]\npassword = "a"\npassword_file = "/x"', "[alerts.smtp] give only one of password, password_file and password_env"),
        ('[alerts.smtp]\npassword_file = "/nonexistent/pw"', "[alerts.smtp] password_file: cannot read /nonexistent/pw: No such file or directory"),
    ],
)
def test_delivery_errors_name_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as err:  # unknown keys are refused already at load
        load_alert_config(settings_from(tmp_path, "[alerts]\n" + body + "\n"))
    assert message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "pipepulse.toml"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('kind = "failed_runs"\nrecipients = ["a@example.com"]\nfrequency = "hourly"',
         "[alerts.rules r] frequency: expected immediate, daily or weekly, got 'hourly'"),
        ('kind = "success_rate"\nrecipients = ["a@example.com"]\nthreshold = 95',
         "[alerts.rules r] threshold: expected a share between 0 and 1 (0.95 = 95%), got 95"),
        ('kind = "anomalies"\nrecipients = ["a@example.com"]\nmin_severity = "urgent"',
         "[alerts.rules r] min_severity: expected one of low, medium, high, critical, got 'urgent'"),
        ('kind = "failed_runs"\nrecipients = ["a@example.com"]\nthreshold = 0.9',
         "[alerts.rules r] threshold: unknown key; known keys: frequency, kind, name, pipelines, recipients, suppression_hours"),
        ('kind = "failed_runs"\nrecipients = []', "[alerts.rules r] recipients: expected a list of email addresses, got []"),
    ],
)
def test_rule_errors_name_the_rule_and_key(tmp_path, rule, message):
    with pytest.raises(ConfigError) as err:
        settings_from(tmp_path, f'[[alerts.rules]]\nname = "r"\n{rule}\n')
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('kind = "anomalies"\nmin_severity = "urgent"',
         "[alerts.rules r] min_severity: expected one of low, medium, high, critical, got 'urgent'"),
        ('kind = "failed_runs"\nfrequency = "fortnightly"',
         "[alerts.rules r] frequency: expected immediate, daily or weekly, got 'fortnightly'"),
        ('kind = "budgets"', "[[alerts.rules]] 'r': unknown kind 'budgets'; expected one of failed_runs, freshness, "),
    ],
)
def test_a_bad_rule_stops_the_scheduler_before_it_starts(tmp_path, capsys, line, message):
    """Every command reads the config first; a bad rule is no longer found only at the first digest."""
    from cli.main import main

    path = tmp_path / "pipepulse.toml"
    path.write_text(f'[[alerts.rules]]\nname = "r"\nrecipients = ["a@example.com"]\n{line}\n', encoding="utf-8")
    assert main(["--config", str(path), "schedule", "--list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pipepulse: error: {path}: ") and message in err, err


def test_a_rule_name_used_twice(tmp_path):
    r = '[[alerts.rules]]\nname = "r"\nkind = "budget"\nrecipients = ["a@example.com"]\n'
    with pytest.raises(ConfigError, match="'r' is defined twice"):
        settings_from(tmp_path, r + r)


def test_password_file_drops_the_trailing_newline(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2\n")
    cfg = load_alert_config(settings_from(tmp_path, f'[alerts.smtp]\npassword_file = "{pw}"\n'))
    assert cfg.smtp.password == "hunter2"


def test_password_from_a_named_environment_variable(tmp_path):
    path = tmp_path / "pipepulse.toml"
    path.write_text('[alerts.smtp]\npassword_env = "PIPEPULSE_SMTP_PASSWORD"\n', encoding="utf-8")
    cfg = load_alert_config(load_settings({"PIPEPULSE_SMTP_PASSWORD": "s3cret"}, config_path=path))
    assert cfg.smtp.password == "s3cret"
    with pytest.raises(ConfigError, match=r"\[alerts.smtp\] password_env: environment variable PIPEPULSE_SMTP_PASSWORD is not set"):
        load_alert_config(load_settings({}, config_path=path))
    path.write_text('[alerts.smtp]\npassword_env = "HOME"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="secrets come from PIPEPULSE_\\* variables, got 'HOME'"):
        load_alert_config(load_settings({"HOME": "/root"}, config_path=path))
