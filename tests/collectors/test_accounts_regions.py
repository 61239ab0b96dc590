"""Accounts and regions: one pass reads every account x region through AssumeRole, over HTTP.

Two member accounts (one with an external id) and a third whose role does not exist, in two
regions, on the local AWS: moto keeps each account's data apart by the credentials AssumeRole
hands out (an assumed role's keys act in the role ARN's account), and the STS stand-in
(devkit/localaws/sts.py) refuses a role that does not exist, as AWS does.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
import sqlalchemy as sa

from cli.main import main
from collectors.accounts import Target, targets
from collectors.base import Batch, CostDays, ForecastRow, InvocationRow, LogRow, MetricData, RunRow
from collectors.runner import collect, stamp
from devkit.localaws.costexplorer import CostExplorerStandIn
from devkit.localaws.sts import StsStandIn, create_role
from pipepulse.errors import ConfigError
from store import dashboard_reads as reads
from store.collecting import failed_runs_to_read
from store.rollups import refresh_run_daily
from store.runs import recent_failures
from store.schema import collector_runs, cost_daily, metric_points, metric_series, runs, watermarks
from store.writes import upsert

pytestmark = pytest.mark.aws_clock

PROD, ANALYTICS, BROKEN = "111111111111", "222222222222", "333333333333"
REGIONS = ("us-east-1", "eu-west-1")
EXTERNAL_ID = "pipepulse-analytics-7f3a"
CONFIG = f"""
[aws]
regions = ["us-east-1", "eu-west-1"]
[[aws.accounts]]
name = "prod"
role_arn = "arn:aws:iam::{PROD}:role/pipepulse-collector"
[[aws.accounts]]
name = "analytics"
role_arn = "arn:aws:iam::{ANALYTICS}:role/pipepulse-collector"
external_id = "{EXTERNAL_ID}"
[[aws.accounts]]
name = "broken"
role_arn = "arn:aws:iam::{BROKEN}:role/pipepulse-collector"
[collectors]
sources = ["stepfunctions", "glue"]
"""
# Glue runs per (account, region): all different, so a row in the wrong place shows
GLUE_RUNS = {(PROD, "us-east-1"): 1, (PROD, "eu-west-1"): 2, (ANALYTICS, "us-east-1"): 3, (ANALYTICS, "eu-west-1"): 1}
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def _sessions() -> dict[str, boto3.Session]:
    """A session with each member account's assumed-role credentials (one model loader for all)."""
    loader = boto3.Session()._session.get_component("data_loader")
    out = {}
    for account in (PROD, ANALYTICS):
        kwargs = {"ExternalId": EXTERNAL_ID} if account == ANALYTICS else {}
        c = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/pipepulse-collector",
                                            RoleSessionName="seed", **kwargs)["Credentials"]
        out[account] = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                     aws_session_token=c["SessionToken"])
        out[account]._session.register_component("data_loader", loader)
    return out


def _seed(aws) -> dict[tuple[str, str], str]:
    """Glue job runs and one Step Functions execution in each member account x region; returns
    the execution ARNs."""
    aws.enable_stepfunctions_execution()
    create_role(PROD, "pipepulse-collector")
    create_role(ANALYTICS, "pipepulse-collector", external_id=EXTERNAL_ID)
    sessions = _sessions()
    executions = {}
    for (account, region), n in GLUE_RUNS.items():
        glue = sessions[account].client("glue", region_name=region)
        glue.create_job(Name="compaction", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"},
                        WorkerType="G.1X", NumberOfWorkers=2, ExecutionProperty={"MaxConcurrentRuns": 5})
        for _ in range(n):
            glue.start_job_run(JobName="compaction")
        sfn = sessions[account].client("stepfunctions", region_name=region)
        machine = sfn.create_state_machine(name="orders", definition=json.dumps(PASS),
                                           roleArn=f"arn:aws:iam::{account}:role/sfn")["stateMachineArn"]
        executions[account, region] = sfn.start_execution(stateMachineArn=machine, name=f"run-{region}")["executionArn"]
    for (account, region), arn in executions.items():
        sfn = sessions[account].client("stepfunctions", region_name=region)
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
    return executions


def test_one_pass_reads_every_account_and_region_and_reports_the_failing_one(aws, make_settings, engine, now):
    executions = _seed(aws)
    aws.app(StsStandIn).reset()  # count only the collectors' refusals
    settings = make_settings(CONFIG)

    results = collect(settings, engine, now=now)

    assert [r.source for r in results] == ["stepfunctions", "glue"]
    for r in results:
        # the broken account fails its two regions; the others are stored
        assert r.status == "failed"
        assert r.error is not None and "2 of 6 account/region targets failed" in r.error
        assert f"broken us-east-1: {r.source}: cannot assume arn:aws:iam::{BROKEN}:role/pipepulse-collector" in r.error
        assert "not authorized to perform: sts:AssumeRole" in r.error
        by_target = {(t["account"], t["region"]): t for t in r.targets}
        assert list(by_target) == [(a, reg) for a in (PROD, ANALYTICS, BROKEN) for reg in REGIONS]
        assert {k: t["status"] for k, t in by_target.items()} == {
            **{k: "succeeded" for k in GLUE_RUNS}, (BROKEN, "us-east-1"): "failed", (BROKEN, "eu-west-1"): "failed"}
    # the role that cannot be assumed was tried once in the whole pass (the refusal is cached)
    assert aws.app(StsStandIn).denied == [f"arn:aws:iam::{BROKEN}:role/pipepulse-collector"]

    with engine.connect() as conn:
        stored = Counter(conn.execute(sa.select(runs.c.source, runs.c.account, runs.c.region)).all())
        sfn_ids = set(conn.execute(sa.select(runs.c.run_id).where(runs.c.source == "stepfunctions")).scalars())
    assert stored == Counter({
        **{("glue", a, reg): n for (a, reg), n in GLUE_RUNS.items()},
        **{("stepfunctions", a, reg): 1 for (a, reg) in GLUE_RUNS},
    })
    assert sfn_ids == {f"stepfunctions:{arn}" for arn in executions.values()}
    for (account, region), arn in executions.items():  # moto kept each account's data in its own account
        assert arn.split(":")[3:5] == [region, account]

    # API calls metered per account and region
    sfn, glue = results
    for (account, region), n in GLUE_RUNS.items():
        t = next(t for t in glue.targets if (t["account"], t["region"]) == (account, region))
        assert t["calls"]["glue:GetJobs"] == 1 and t["calls"]["glue:GetJobRuns"] == 1
        assert t["rows"] == n
        s = next(t for t in sfn.targets if (t["account"], t["region"]) == (account, region))
        assert s["calls"]["states:ListStateMachines"] == 1
    # AssumeRole once per account per pass, counted with the first target that needed it
    assumed: Counter[tuple[str, str]] = Counter()
    for r in results:
        for t in r.targets:
            assumed[t["account"], t["region"]] += t["calls"].get("sts:AssumeRole", 0)
    assert +assumed == Counter({(PROD, "us-east-1"): 1, (ANALYTICS, "us-east-1"): 1, (BROKEN, "us-east-1"): 1})
    assert glue.api_calls == sum(t["api_calls"] for t in glue.targets)
    assert glue.calls["glue:GetJobRuns"] == 4

    with engine.connect() as conn:
        recorded = conn.execute(sa.select(collector_runs.c.source, collector_runs.c.status, collector_runs.c.rows_written,
                                          collector_runs.c.details).order_by(collector_runs.c.collector_run_id)).all()
        marks = set(conn.execute(sa.select(watermarks.c.key).where(watermarks.c.source == "glue")).scalars())
    assert [(s, st, n) for s, st, n, _ in recorded] == [("stepfunctions", "failed", sfn.rows_written),
                                                       ("glue", "failed", glue.rows_written)]
    details = json.loads(recorded[1][3])
    assert [(t["account"], t["region"], t["status"], t["rows"]) for t in details["targets"]] == [
        (a, reg, "succeeded", n) for (a, reg), n in GLUE_RUNS.items()] + [
        (BROKEN, reg, "failed", 0) for reg in REGIONS]
    # watermarks per source + account + region: one account's progress never moves another's
    assert marks == {f"{a}/{reg}/job:compaction" for (a, reg) in GLUE_RUNS}

    # the next pass stores nothing twice
    again = collect(settings, engine, now=now, sources=["glue"])
    assert again[0].rows_written == 0
    assert [t["status"] for t in again[0].targets] == ["succeeded"] * 4 + ["failed"] * 2


def test_targets_by_scope(make_settings):
    settings = make_settings(CONFIG)
    regional = targets(settings, "regional")
    assert [(t.account, t.region, t.name) for t in regional] == [
        (a, reg, n) for a, n in ((PROD, "prod"), (ANALYTICS, "analytics"), (BROKEN, "broken")) for reg in REGIONS]
    assert regional[2].external_id == EXTERNAL_ID
    # Cost Explorer: once per account, at its global endpoint
    assert [(t.account, t.region) for t in targets(settings, "account")] == [(a, "us-east-1") for a in (PROD, ANALYTICS, BROKEN)]
    assert targets(settings, "once") == [Target(account="", region="us-east-1", default=True)]


def test_without_accounts_the_single_target_keeps_todays_keys(make_settings):
    plain = make_settings('[aws]\nregion = "eu-west-1"\n')
    assert targets(plain, "regional") == [Target(account="", region="eu-west-1", default=True)]
    assert targets(plain, "account") == [Target(account="", region="eu-west-1", default=True)]
    two = targets(make_settings('[aws]\nregion = "eu-west-1"\nregions = ["eu-west-1", "us-east-1"]\n'), "regional")
    assert [(t.region, t.default, t.prefix) for t in two] == [("eu-west-1", True, ""), ("us-east-1", False, "default/us-east-1/")]
    marks = {"job:a": "1", "default/us-east-1/job:a": "2"}
    assert two[0].own(marks) == {"job:a": "1"}
    assert two[1].own(marks) == {"job:a": "2"}


@pytest.mark.parametrize(("text", "message"), [
    ('[aws]\nregions = ["us-east-1", "Frankfurt"]\n', r"\[aws\] regions #2: 'Frankfurt' is not an AWS region name"),
    ('[aws]\nregions = ["us-east-1", "us-east-1"]\n', r"\[aws\] regions: 'us-east-1' is listed twice"),
    ('[aws]\nregion = "useast1"\n', r"\[aws\] region: 'useast1' is not an AWS region name"),
    ('[[aws.accounts]]\nrole_arn = "arn:aws:iam::1234:role/x"\n',
     r"\[aws.accounts #1\] role_arn: 'arn:aws:iam::1234:role/x' is not an IAM role ARN"),
    ('[[aws.accounts]]\nrole_arn = "arn:aws:iam::123456789012:user/x"\n', r"\[aws.accounts #1\] role_arn: .* is not an IAM role ARN"),
    ('[[aws.accounts]]\nname = "prod"\n', r"\[\[aws.accounts\]\] #1: role_arn is required"),
    ('[[aws.accounts]]\nrole_arn = "arn:aws:iam::123456789012:role/x"\n[[aws.accounts]]\nrole_arn = "arn:aws:iam::123456789012:role/y"\n',
     r"\[aws.accounts #2\] role_arn: account 123456789012 is listed twice"),
    ('[[aws.accounts]]\nrole_arn = "arn:aws:iam::123456789012:role/x"\nexternal_id = "a b"\n', r"\[aws.accounts #1\] external_id"),
    ('[[aws.accounts]]\nrole_arn = "arn:aws:iam::123456789012:role/x"\nexternalid = "ab"\n', r"\[aws.accounts\] externalid: unknown key"),
])
def test_bad_account_and_region_config_names_the_key(make_settings, text, message):
    with pytest.raises(ConfigError, match=message):
        make_settings(text)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-account.toml"


def test_example_config_collects_both_accounts_and_regions_and_exit_code_reports_a_failing_one(
        aws, db_url, engine, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    for k in ("PIPEPULSE_CONFIG", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    assert main(["--config", str(EXAMPLE), "db", "upgrade"]) == 0
    capsys.readouterr()

    # no AWS configured: --local-aws starts one in this process and seeds the member accounts' roles
    assert main(["--config", str(EXAMPLE), "collect", "--local-aws"]) == 0
    out = capsys.readouterr().out
    for source in ("stepfunctions", "glue"):
        assert re.search(rf"^{source} +succeeded +rows ", out, re.M), out
    for who in ("prod (111111111111)", "analytics (222222222222)"):
        for region in REGIONS:  # one line per source (the row count of stepfunctions depends on moto's execute mode)
            assert len(re.findall(rf"^  {re.escape(who)} {region} +succeeded +rows +\d+  API calls +\d+$", out, re.M)) == 2, out
    with engine.connect() as conn:
        stored = Counter(conn.execute(sa.select(runs.c.source, runs.c.account, runs.c.region)).all())
    assert stored == Counter({(source, a, reg): 1 for source in ("stepfunctions", "glue") for a in (PROD, ANALYTICS) for reg in REGIONS})

    # the same accounts (their roles stay in this process's moto) plus one whose role does not
    # exist, read through the test's local AWS: the pass is partial, and the exit code says so
    broken = EXAMPLE.read_text() + f'\n[[aws.accounts]]\nname = "broken"\nrole_arn = "arn:aws:iam::{BROKEN}:role/x"\n'
    config = tmp_path / "broken.toml"
    config.write_text(broken)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["--config", str(config), "collect", "--source", "glue"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^glue +failed +rows +0 ", out, re.M), out  # nothing new in the good accounts
    assert len(re.findall(r"^  (prod|analytics) \(\d{12}\) \S+ +succeeded ", out, re.M)) == 4, out
    assert len(re.findall(rf"^  broken \({BROKEN}\) \S+ +failed ", out, re.M)) == 2, out
    assert f"2 of 6 account/region targets failed: broken us-east-1: glue: cannot assume arn:aws:iam::{BROKEN}:role/x" in out


def test_stamp_places_rows_keys_and_cost_days_in_the_target(now):
    target = Target(account=PROD, region="eu-west-1", name="prod", role_arn=f"arn:aws:iam::{PROD}:role/r")
    cost = pd.DataFrame([{"day": now.date(), "provider": "AWS", "account": "", "service": "Glue", "region": "eu-west-1",
                          "usage_type": "*", "pipeline": "*", "billed_cost": 1.0, "effective_cost": 1.0, "currency": "USD"}])
    batch = Batch(
        runs=[RunRow(run_id="glue:j:1", status="SUCCEEDED", pipeline="j", source="glue"),
              RunRow(run_id="stepfunctions:x", status="SUCCEEDED", pipeline="m", source="stepfunctions",
                     account=ANALYTICS, region="us-east-1")],  # a row that names its own place keeps it
        logs=[LogRow(log_id="g:1", run_id=None, correlation_id=None, ts=now, level="INFO", message="m")],
        invocations=[InvocationRow(log_group="/aws/lambda/f", request_id="r", function_name="f", ended_at=now,
                                   duration_ms=1.0, billed_duration_ms=1.0, memory_size_mb=128, max_memory_used_mb=64)],
        metrics=MetricData(series=[{"series_key": "k", "namespace": "N"}], points=[("k", now, 1.0)]),
        costs=[CostDays(source="ce", start=now.date(), end=now.date(), rows=cost)],
        forecasts=[ForecastRow(created_at=now, method="aws", subject="total", level=0.8, points=pd.DataFrame())],
        watermarks={"job:j": "w"},
    )
    out = stamp(batch, target, primary=False)
    assert [(r.account, r.region) for r in out.runs] == [(PROD, "eu-west-1"), (ANALYTICS, "us-east-1")]
    assert (out.logs[0].account, out.logs[0].region) == (PROD, "eu-west-1")
    assert (out.invocations[0].account, out.invocations[0].region) == (PROD, "eu-west-1")
    assert out.metrics is not None
    assert out.metrics.series == [{"series_key": f"{PROD}/eu-west-1/k", "namespace": "N", "account": PROD, "region": "eu-west-1"}]
    assert out.metrics.points == [(f"{PROD}/eu-west-1/k", now, 1.0)]
    assert out.costs[0].where == {"account": PROD} and list(out.costs[0].rows["account"]) == [PROD]
    assert out.forecasts == []  # only the first-listed (payer) account's forecast is kept
    assert out.watermarks == {f"{PROD}/eu-west-1/job:j": "w"}
    assert stamp(batch, Target(account="", region="us-east-1", default=True)) is batch


def test_run_lists_filter_by_account_and_region(engine, now):
    rows = [{"run_id": f"r{i}", "pipeline": "p", "source": "glue", "status": "FAILED", "started_at": now - timedelta(hours=i + 1),
             "account": account, "region": region}
            for i, (account, region) in enumerate([(PROD, "us-east-1"), (PROD, "eu-west-1"), (ANALYTICS, "eu-west-1"), ("", "")])]
    with engine.begin() as conn:
        upsert(conn, runs, rows, now=now)
        refresh_run_daily(conn, days={r["started_at"].date() for r in rows}, now=now)  # as the collectors do
    start, end = now - timedelta(days=1), now
    with engine.connect() as conn:
        assert reads.regions(conn, since=start.date()) == ["eu-west-1", "us-east-1"]
        assert reads.accounts(conn, since=start.date()) == [PROD, ANALYTICS]
        assert list(reads.runs_frame(conn, start, end, regions=["eu-west-1"])["run_id"]) == ["r1", "r2"]
        assert list(reads.runs_frame(conn, start, end, accounts=[PROD], regions=["eu-west-1"])["run_id"]) == ["r1"]
        assert list(reads.runs_frame(conn, start, end)["run_id"]) == ["r0", "r1", "r2", "r3"]
        assert list(recent_failures(conn, since=start, accounts=[ANALYTICS])["run_id"]) == ["r2"]
        assert list(recent_failures(conn, since=start, regions=["us-east-1"])["run_id"]) == ["r0"]
        # the logs collector's read for one target: its own runs, and (the first target) runs placed nowhere
        assert [r["run_id"] for r in failed_runs_to_read(conn, account=PROD, region="eu-west-1")] == ["r1"]
        assert [r["run_id"] for r in failed_runs_to_read(conn, account=PROD, region="us-east-1", unplaced=True)] == ["r0", "r3"]


def test_cost_explorer_once_per_account_at_its_global_endpoint(aws, make_settings, engine, now):
    ce = aws.app(CostExplorerStandIn)
    ce.configure(today=now.date(), page_size=50)
    day = now.date() - timedelta(days=2)
    ce.load_line_items([{"date": day.isoformat(), "service": "AWS Glue", "region": region, "usage_type": "ETL-DPU-Hour",
                         "tags": {}, "unblended_cost": cost, "amortized_cost": cost, "usage_quantity": 1.0}
                        for region, cost in (("us-east-1", 2.5), ("eu-west-1", 1.5))])
    create_role(PROD, "pipepulse-collector")
    create_role(ANALYTICS, "pipepulse-collector", external_id=EXTERNAL_ID)
    config = CONFIG.replace('sources = ["stepfunctions", "glue"]', 'sources = ["ce"]\n[collectors.ce]\nbackfill_days = 3')
    config = config[:config.index('[[aws.accounts]]\nname = "broken"')] + config[config.index("[collectors]"):]

    [result] = collect(make_settings(config), engine, now=now)

    assert result.status == "succeeded", result.error
    # one target per account, not per region; the forecast only for the first-listed (payer) account
    assert [(t["account"], t["region"], t["status"]) for t in result.targets] == [
        (PROD, "us-east-1", "succeeded"), (ANALYTICS, "us-east-1", "succeeded")]
    prod, analytics = (t["calls"] for t in result.targets)
    assert prod["ce:GetCostForecast"] == 1 and "ce:GetCostForecast" not in analytics
    assert prod["ce:GetCostAndUsage"] == analytics["ce:GetCostAndUsage"] >= 3
    with engine.connect() as conn:
        by_account = dict(conn.execute(
            sa.select(cost_daily.c.account, sa.func.sum(cost_daily.c.billed_cost))
            .where(cost_daily.c.source == "ce", cost_daily.c.region != "*").group_by(cost_daily.c.account)).all())
    # the stand-in answers every caller with the same bill; each account's rows are its own, and
    # the second account's pass did not replace the first's
    assert by_account == {PROD: 4.0, ANALYTICS: 4.0}


def test_cloudwatch_series_per_account_and_region(aws, make_settings, engine, now):
    create_role(PROD, "pipepulse-collector")
    create_role(ANALYTICS, "pipepulse-collector", external_id=EXTERNAL_ID)
    sessions = _sessions()
    t = now - timedelta(minutes=50)
    value = {(PROD, "us-east-1"): 1.0, (PROD, "eu-west-1"): 2.0, (ANALYTICS, "us-east-1"): 3.0, (ANALYTICS, "eu-west-1"): 4.0}
    for (account, region), v in value.items():  # the same metric name and dimensions everywhere
        sessions[account].client("cloudwatch", region_name=region).put_metric_data(
            Namespace="Pipepulse/Reference",
            MetricData=[{"MetricName": "RecordsIn", "Dimensions": [{"Name": "Pipeline", "Value": "orders"}],
                         "Timestamp": t, "Value": v}])
    config = CONFIG.replace('sources = ["stepfunctions", "glue"]', 'sources = ["cloudwatch"]\n[collectors.cloudwatch]\n'
                            'namespaces = ["Pipepulse/Reference"]\nstats = ["Sum"]\nperiod_seconds = 300\nlookback_hours = 1')
    config = config[:config.index('[[aws.accounts]]\nname = "broken"')] + config[config.index("[collectors]"):]
    settings = make_settings(config)

    [first] = collect(settings, engine, now=now)

    assert first.status == "succeeded", first.error
    assert [t["calls"]["monitoring:GetMetricData"] for t in first.targets] == [1, 1, 1, 1]
    with engine.connect() as conn:
        got = conn.execute(sa.select(metric_series.c.account, metric_series.c.region, metric_series.c.series_key,
                                     metric_points.c.value)
                           .join(metric_points, metric_points.c.series_id == metric_series.c.series_id)).all()
    assert {(a, r): v for a, r, _, v in got} == value  # four series, each with its own account's point
    assert all(key.startswith(f"{a}/{r}/") for a, r, key, _ in got)
    [second] = collect(settings, engine, now=now)  # each target finds its own series and watermark
    assert second.status == "succeeded" and second.rows_written == 0
