"""One schedule list: the registry drives `pipepulse schedule`, `--print-crontab` and the
EventBridge rules of the CloudFormation template; these tests fail when any of the three drifts."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from cfnlint.decode import decode

from cli.main import build_parser, main
from jobs.registry import JOBS, planned
from jobs.scheduler import build_jobs
from pipepulse.cron import eventbridge_expression
from pipepulse.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "pipepulse.yaml"
DEPLOY_CONFIG = ROOT / "deploy" / "pipepulse.example.toml"  # the config the template's tasks run with


@pytest.fixture
def deployed(db_url):
    return load_settings({"PIPEPULSE_DATABASE_URL": db_url}, config_path=DEPLOY_CONFIG)


def _rules() -> dict[tuple[str, ...], dict]:
    """Each EventBridge rule's command -> its schedule expression and task role override."""
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    out = {}
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Events::Rule":
            continue
        props = res["Properties"]
        (target,) = props["Targets"]
        raw = target["Input"]
        text = raw if isinstance(raw, str) else raw["Fn::Sub"]
        body = json.loads(re.sub(r"\$\{([^}.]+)\.Arn\}", r"\1", text))
        command = tuple(body["containerOverrides"][0]["command"])
        assert command not in out, f"{name}: a second rule runs {command}"
        out[command] = {"rule": name, "schedule": props["ScheduleExpression"], "role": body.get("taskRoleArn")}
    return out


def test_every_job_has_a_command_pipepulse_parses():
    parser = build_parser()
    names = [j.name for j in JOBS]
    for wanted in ("collect", "detect", "forecast", "alerts_immediate", "digest_daily", "digest_weekly",
                   "retention", "backup"):
        assert wanted in names
    for j in JOBS:
        assert j.command, j.name
        parser.parse_args(list(j.command))  # argparse exits on a command pipepulse does not have


def test_scheduler_crontab_and_cloudformation_run_the_same_jobs_on_the_same_crons(deployed, engine, db_url, monkeypatch, capsys):
    plan = planned(deployed)
    # the deployment's config: five sources (no local ledger on AWS), then every other job
    assert [p.name for p in plan] == ["stepfunctions", "glue", "cloudwatch", "logs", "ce", "detect", "forecast",
                                      "alerts_immediate", "digest_daily", "digest_weekly", "retention", "backup"]
    assert plan[0].command == ("collect", "--source", "stepfunctions")

    # 1. the long-running scheduler
    assert [(s.name, s.cron.expression) for s in build_jobs(deployed, engine)] == [(p.name, p.cron) for p in plan]

    # 2. the crontab it prints
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    assert main(["--config", str(DEPLOY_CONFIG), "schedule", "--print-crontab", "--pipepulse", "/srv/pp/bin/pipepulse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "CRON_TZ=UTC"
    crontab = []
    for line in lines[2:]:
        fields = line.split(None, 5)
        argv = shlex.split(fields[5], comments=True)
        assert argv[:3] == ["/srv/pp/bin/pipepulse", "--config", str(DEPLOY_CONFIG.resolve())]
        crontab.append((" ".join(fields[:5]), tuple(argv[3:])))
    assert crontab == [(p.cron, p.command) for p in plan]

    # 3. the EventBridge rules: one per job (per source for collect), same command, same time
    rules = _rules()
    in_cloud = [p for p in plan if not p.job.cloud]
    assert {p.command: eventbridge_expression(p.cron) for p in in_cloud} == {c: r["schedule"] for c, r in rules.items()}
    for p in in_cloud:  # the alert jobs send mail: they run with the digest's role, the rest with the collectors'
        assert rules[p.command]["role"] == ("DigestTaskRole" if p.job.target == "jobs.digest:run" else None), p.name
    # a job left out of the cloud says what replaces it, and that is really there
    assert [p.name for p in plan if p.job.cloud] == ["backup"]
    template, _ = decode(str(TEMPLATE))
    assert template["Resources"]["Database"]["Properties"]["BackupRetentionPeriod"] == {"Ref": "BackupRetentionDays"}


def test_schedule_config_moves_a_job_in_every_view(make_settings):
    settings = make_settings('[collectors]\nsources = ["glue"]\n[collectors.glue]\ncron = "7 * * * *"\n'
                             '[schedule]\ndetect = "*/30 * * * *"\nbackup = ""\n')
    plan = {p.name: (p.cron, p.command) for p in planned(settings)}
    assert plan["glue"] == ("7 * * * *", ("collect", "--source", "glue"))
    assert plan["detect"] == ("*/30 * * * *", ("detect",))
    assert "backup" not in plan


@pytest.mark.parametrize(("cron", "eventbridge"), [
    ("*/5 * * * *", "cron(*/5 * * * ? *)"),
    ("30 3 * * *", "cron(30 3 * * ? *)"),
    ("0 8 * * 1", "cron(0 8 ? * MON *)"),
    ("0 8 * * 0", "cron(0 8 ? * SUN *)"),
    ("0 8 * * 7", "cron(0 8 ? * SUN *)"),
    ("0 9 * * 1-5", "cron(0 9 ? * MON-FRI *)"),
    ("0 9 * * sat,sun", "cron(0 9 ? * SAT,SUN *)"),
    ("0 0 1 * *", "cron(0 0 1 * ? *)"),
])
def test_cron_to_eventbridge(cron, eventbridge):
    assert eventbridge_expression(cron) == eventbridge


def test_cron_that_eventbridge_cannot_say_is_refused():
    with pytest.raises(ValueError, match="day of month \\*or\\* a day of week"):
        eventbridge_expression("0 0 1 * 1")
    with pytest.raises(ValueError, match="not a 5-field cron"):
        eventbridge_expression("0 0 * *")
