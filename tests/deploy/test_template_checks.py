"""Checks on the deploy files: cfn-lint on every template, a focused security-policy check (the
rules checkov would apply that matter here, without checkov's dependency pins, which would
downgrade this project's boto3/botocore), and every command the compose file, the ECS tasks and
the schedules run parsed by pipepulse's own CLI.

checkov itself (3.3.30, in a separate venv) reports 0 failures on these templates, with the 13
skips explained next to each resource in ``Metadata: checkov: skip``; ``test_checkov_when_installed``
re-runs it when ``PIPEPULSE_CHECKOV`` names a checkov executable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "deploy" / "cloudformation").glob("*.yaml"))
CFN_LINT = ROOT / ".venv" / "bin" / "cfn-lint"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"

# Write actions that AWS only grants on Resource "*" (no resource-level permissions), and why.
STAR_RESOURCE_WRITES = {
    "logs:CreateLogDelivery": "Step Functions log delivery supports only *",
    "logs:UpdateLogDelivery": "Step Functions log delivery supports only *",
    "logs:DeleteLogDelivery": "Step Functions log delivery supports only *",
    "logs:PutResourcePolicy": "Step Functions log delivery supports only *",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
}
READ_VERBS = ("Get", "List", "Describe", "Filter", "Head", "BatchGet", "Lookup", "Search", "Select")


def _load(path: Path) -> dict:
    template, matches = decode(str(path))
    assert not matches, matches
    return template


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r.get("Properties", {}) for name, r in template["Resources"].items() if r["Type"] == kind}


def _policy_documents(template: dict):
    """(resource name, policy document) for every identity policy in the template."""
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for pol in props.get("Policies", []):
                yield f"{name}/{pol['PolicyName']}", pol["PolicyDocument"]
        elif res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield name, props["PolicyDocument"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_there_are_templates():
    assert {p.name for p in TEMPLATES} == {"pipepulse.yaml", "reference-pipeline.yaml"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint(template):
    proc = subprocess.run([str(CFN_LINT), "--format", "parseable", str(template)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_wildcard_actions_and_writes_are_scoped(template):
    for where, doc in _policy_documents(_load(template)):
        for st in doc["Statement"]:
            if st["Effect"] != "Allow":
                continue
            actions = _as_list(st["Action"])
            resources = _as_list(st["Resource"])
            for action in actions:
                assert "*" not in action, f"{where}: wildcard action {action}"
                verb = action.split(":", 1)[1]
                if "*" in resources and not verb.startswith(READ_VERBS) and action not in ("sts:AssumeRole",):
                    assert action in STAR_RESOURCE_WRITES, f"{where}: write action {action} on Resource '*'"


def test_buckets_are_encrypted_private_versioned_and_tls_only():
    template = _load(ROOT / "deploy" / "cloudformation" / "reference-pipeline.yaml")
    buckets = _resources(template, "AWS::S3::Bucket")
    assert set(buckets) == {"SourceBucket", "LakeBucket"}
    policies = {p["Bucket"]["Ref"]: p["PolicyDocument"] for p in _resources(template, "AWS::S3::BucketPolicy").values()}
    for name, props in buckets.items():
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert rule["SSEAlgorithm"] in ("aws:kms", "AES256")
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        deny = [s for s in policies[name]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in deny), name
    # the landing bucket announces new files to EventBridge, which starts the state machine
    assert buckets["SourceBucket"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    rule = template["Resources"]["NewFileRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["Object Created"]
    assert rule["Targets"][0]["Arn"] == {"Ref": "StateMachine"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_every_log_group_has_retention_and_topics_are_encrypted(template):
    t = _load(template)
    groups = _resources(t, "AWS::Logs::LogGroup")
    assert groups
    for name, props in groups.items():
        assert "RetentionInDays" in props, name
    for name, props in _resources(t, "AWS::SNS::Topic").items():
        assert props.get("KmsMasterKeyId"), name


def test_lambdas_log_to_their_group_and_are_traced():
    t = _load(ROOT / "deploy" / "cloudformation" / "reference-pipeline.yaml")
    fns = _resources(t, "AWS::Lambda::Function")
    assert {p["Handler"] for p in fns.values()} == {"handlers.ingest", "handlers.transform"}
    for props in fns.values():
        assert props["TracingConfig"]["Mode"] == "Active"
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in t["Resources"]
        assert props["ReservedConcurrentExecutions"] > 0
    sm = t["Resources"]["StateMachine"]["Properties"]
    assert sm["LoggingConfiguration"]["Level"] in ("ERROR", "ALL")
    alarms = {p["MetricName"] for p in _resources(t, "AWS::CloudWatch::Alarm").values()}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionTime", "Errors", "Duration"} <= alarms


def test_database_is_private_encrypted_backed_up_and_protected():
    t = _load(ROOT / "deploy" / "cloudformation" / "pipepulse.yaml")
    (db,) = _resources(t, "AWS::RDS::DBInstance").values()
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["DeletionProtection"] is True
    assert db["ManageMasterUserPassword"] is True and "MasterUserPassword" not in db
    assert db["BackupRetentionPeriod"] == {"Ref": "BackupRetentionDays"}
    assert t["Parameters"]["BackupRetentionDays"]["MinValue"] >= 1  # automated backups = PITR, always on
    assert db["MultiAZ"] == {"Ref": "MultiAZ"}
    assert t["Resources"]["Database"]["DeletionPolicy"] == "Snapshot"
    # only the tasks' security group reaches PostgreSQL
    sg = t["Resources"]["DatabaseSecurityGroup"]["Properties"]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in sg["SecurityGroupIngress"]] == [(5432, {"Ref": "TaskSecurityGroup"})]
    params = t["Resources"]["DatabaseParameterGroup"]["Properties"]["Parameters"]
    assert params["rds.force_ssl"] == "1"


def test_dashboard_only_over_https_and_tasks_private():
    t = _load(ROOT / "deploy" / "cloudformation" / "pipepulse.yaml")
    listeners = _resources(t, "AWS::ElasticLoadBalancingV2::Listener").values()
    for props in listeners:
        if props["Protocol"] == "HTTPS":
            assert props["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
            assert props["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
        else:
            # plain HTTP only ever redirects to HTTPS
            assert [a["Type"] for a in props["DefaultActions"]] == ["redirect"]
            assert props["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert {p["Protocol"] for p in listeners} == {"HTTPS", "HTTP"}
    (lb,) = _resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attrs = {a["Key"]: a["Value"] for a in lb["LoadBalancerAttributes"]}
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    svc = t["Resources"]["DashboardService"]["Properties"]
    assert svc["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    for rule in _resources(t, "AWS::Events::Rule").values():
        for target in rule["Targets"]:
            net = target["EcsParameters"]["NetworkConfiguration"]["AwsVpcConfiguration"]
            assert net["AssignPublicIp"] == "DISABLED"
    for name, task in _resources(t, "AWS::ECS::TaskDefinition").items():
        for c in task["ContainerDefinitions"]:
            assert c["ReadonlyRootFilesystem"] is True, (name, c["Name"])
            assert not c.get("Privileged")
            env = {e["Name"] for e in c.get("Environment", [])}
            assert not {n for n in env if re.search("PASSWORD|SECRET", n)}, f"{name}/{c['Name']}: secrets belong in Secrets"
            assert "PGPASSWORD" in {s["Name"] for s in c["Secrets"]}


# ---- the commands the deploy files run are commands pipepulse has ---------------------------------


def _parse(argv: list[str]) -> None:
    from cli.main import build_parser

    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on an unknown command
        raise AssertionError(f"`pipepulse {' '.join(argv)}` is not a pipepulse command") from exc


def _deployed_commands() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    compose = yaml.safe_load(COMPOSE.read_text())
    for name, svc in compose["services"].items():
        if "command" in svc and svc.get("image", "").startswith("pipepulse"):
            out[f"compose:{name}"] = svc["command"]
        test = svc.get("healthcheck", {}).get("test")
        if test and test[1] == "pipepulse":
            out[f"compose:{name}:healthcheck"] = test[2:]
    t = _load(ROOT / "deploy" / "cloudformation" / "pipepulse.yaml")
    for name, rule in _resources(t, "AWS::Events::Rule").items():
        for target in rule["Targets"]:
            raw = target["Input"]
            text = raw if isinstance(raw, str) else raw["Fn::Sub"]
            overrides = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["containerOverrides"]
            out[f"cfn:{name}"] = overrides[0]["command"]
    for name, task in _resources(t, "AWS::ECS::TaskDefinition").items():
        for c in task["ContainerDefinitions"]:
            if c.get("EntryPoint") in (None, ["pipepulse"]) or c["EntryPoint"][-1] == "pipepulse":
                out[f"cfn:{name}/{c['Name']}"] = c["Command"]
            else:  # a shell line ending in `exec pipepulse ...`
                line = c["Command"][0]
                out[f"cfn:{name}/{c['Name']}"] = line.split("exec pipepulse ", 1)[1].split()
            hc = c.get("HealthCheck", {}).get("Command")
            if hc:
                out[f"cfn:{name}/{c['Name']}:healthcheck"] = hc[2:]
    return out


def test_every_deployed_command_is_a_pipepulse_command():
    commands = _deployed_commands()
    assert len(commands) >= 10
    for where, argv in commands.items():
        try:
            _parse(argv)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc


def test_compose_start_order_is_gated_on_health_and_migration():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert services["migrate"]["command"] == ["db", "upgrade", "--dashboard-role", "pipepulse_dashboard"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("dashboard", "scheduler"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    # the dashboard binds 0.0.0.0 in its container, so compose must hand it a login
    assert services["dashboard"]["command"][-4:-2] == ["--secrets", "/run/secrets/dashboard.toml"]
    assert services["dashboard"]["secrets"][0]["target"] == "dashboard.toml"


def test_checkov_when_installed():
    checkov = os.environ.get("PIPEPULSE_CHECKOV")
    if not checkov:
        pytest.skip("set PIPEPULSE_CHECKOV=/path/to/checkov to re-run checkov (kept out of requirements-dev.txt: it pins boto3 1.35)")
    proc = subprocess.run([checkov, "-d", str(ROOT / "deploy" / "cloudformation"), "--framework", "cloudformation",
                           "--compact", "-o", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c["check_id"] + " " + c["resource"] for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    # every skip carries its explanation (Metadata: checkov: skip: comment)
    skipped = [c for r in reports for c in r["results"].get("skipped_checks", [])]
    assert skipped and all(c["check_result"].get("suppress_comment") for c in skipped)
