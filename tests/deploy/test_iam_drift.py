"""The collector role allows exactly the AWS read actions the collectors call.

The operations are derived from the collector code at test time (an AST scan of
``collectors/*.py``), so a collector that starts calling a new operation fails this test until
the policy in ``deploy/cloudformation/pipepulse.yaml`` (``CollectorReadPolicy``) grants it, and a
grant no collector uses any more fails it too.

How the scan works, and its limits:
- services: every ``<anything>.client("<service>")`` with a literal service name in the module
  (``ctx.client("ce")``, ``boto3.client("s3")``, ``session.client("logs")``);
- operations: every call ``<expr>.<method>(...)`` where ``method`` is an operation of one of
  those services in botocore's service model (``client.get_cost_and_usage(...)``,
  ``self.s3.get_object(...)``), and every ``get_paginator("<operation>")``. A module that calls
  operations on a client made elsewhere is matched against the services of all collectors.
- every module of collectors/ runs under the role and is scanned (the demo's seeding of the
  local AWS, which writes, is devkit/aws_seed.py).
- Not seen: operations called through ``getattr`` with a computed name, or a service name that is
  not a literal. Collectors do neither; keep it that way.
- Operation -> IAM action: ``<iam prefix>:<OperationName>`` from botocore's model, except where
  IAM names the permission differently (``S3_ACTIONS``).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import botocore.session
import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
COLLECTORS = ROOT / "collectors"
TEMPLATE = ROOT / "deploy" / "cloudformation" / "pipepulse.yaml"

# boto3 client name -> IAM action prefix (where they differ from botocore's endpoint prefix)
IAM_PREFIX = {"stepfunctions": "states", "cloudwatch": "cloudwatch", "logs": "logs", "glue": "glue", "ce": "ce",
              "s3": "s3", "ses": "ses", "sts": "sts", "tagging": "tag", "resourcegroupstaggingapi": "tag"}
# S3 operations whose IAM permission has another name
S3_ACTIONS = {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadObject": "GetObject",
              "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions"}


# actions AWS performs with the caller's permissions while serving an action the code calls:
# granted beside it, though no collector calls them itself
IMPLIED = {
    "athena:StartQueryExecution": {"glue:GetDatabase", "glue:GetPartitions", "s3:PutObject", "s3:GetBucketLocation"},
}
# not read actions, each for a stated reason (test_collector_policy_is_read_only)
NOT_READS = {
    "sts:AssumeRole": "the member accounts' read roles ([[aws.accounts]])",
    "athena:StartQueryExecution": "runs the athena cost source's own SELECT",
    "athena:StopQueryExecution": "stops that SELECT when it times out",
    "s3:PutObject": "Athena's result files, under athena-results/ of the export bucket only",
}


@cache
def _session():
    return botocore.session.get_session()


@cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> OperationName for a boto3 client of ``service``."""
    from botocore import xform_name

    model = _session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that allows ``operation`` of ``service`` (a boto3 client name)."""
    model = _session().get_service_model(service)
    model.operation_model(operation)  # raises if the operation does not exist
    prefix = IAM_PREFIX.get(service) or model.signing_name or model.endpoint_prefix
    if service == "s3":
        operation = S3_ACTIONS.get(operation, operation)
    return f"{prefix}:{operation}"


def _services_in(tree: ast.AST) -> set[str]:
    """Services of ``<x>.client("svc", ...)`` and of the collectors' own ``client(settings, "svc", ...)``."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr == "client":
            args = node.args[:1]
        elif isinstance(node.func, ast.Name) and node.func.id == "client":
            args = node.args[:2]
        else:
            continue
        found.update(a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def _calls_in(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(method names called on anything, operation names given to get_paginator)."""
    methods, paginated = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "get_paginator":
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    paginated.add(node.args[0].value)
            else:
                methods.add(node.func.attr)
    return methods, paginated


def derive_actions(paths: list[Path]) -> dict[str, set[str]]:
    """IAM action -> the modules (file names) that need it, from the source of ``paths``."""
    trees = {p: ast.parse(p.read_text(), filename=str(p)) for p in paths}
    local = {p: _services_in(t) for p, t in trees.items()}
    everywhere = set().union(*local.values()) if local else set()
    needed: dict[str, set[str]] = {}
    for path, tree in trees.items():
        methods, paginated = _calls_in(tree)
        for name in sorted(methods | paginated):
            # a service this module makes a client for first, else any collector's services
            hits = [(svc, _operations(svc)[name]) for svc in sorted(local[path]) if name in _operations(svc)]
            hits = hits or [(svc, _operations(svc)[name]) for svc in sorted(everywhere) if name in _operations(svc)]
            if not hits and name in paginated:
                raise AssertionError(f"{path.name}: get_paginator({name!r}) is not an operation of {sorted(everywhere)}")
            for svc, op in hits:
                needed.setdefault(iam_action(svc, op), set()).add(path.name)
    return needed


def collector_modules() -> list[Path]:
    # everything in collectors/ runs under the role (the demo's seeding of AWS is devkit/aws_seed.py)
    return sorted(COLLECTORS.glob("*.py"))


def policy_actions(template_path: Path = TEMPLATE, resource: str = "CollectorReadPolicy") -> set[str]:
    template, matches = decode(str(template_path))
    assert not matches, matches
    doc = template["Resources"][resource]["Properties"]["PolicyDocument"]
    actions: set[str] = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow", f"{resource}: only Allow statements expected"
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        actions.update(acts)
    return actions


# ---- the scanner itself, on a fixture module ------------------------------------------------

FIXTURE = '''
import boto3

def collect(ctx):
    ce = ctx.client("ce")
    sfn = ctx.client("stepfunctions")
    ce.get_cost_and_usage(TimePeriod={})
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn="x"):
        pass
    sfn.describe_execution(executionArn="y")
    helper(boto3.client("s3"))
    ctx.storage.list("prefix")          # not an AWS operation: ignored
    return sorted([])

def helper(s3_client):
    s3_client.get_object(Bucket="b", Key="k")
    for _ in s3_client.get_paginator("list_objects_v2").paginate(Bucket="b"):
        pass
'''


def test_scanner_maps_calls_and_paginators_to_iam_actions(tmp_path):
    module = tmp_path / "fixture_collector.py"
    module.write_text(FIXTURE)
    assert derive_actions([module]) == {
        "ce:GetCostAndUsage": {"fixture_collector.py"},
        "states:ListExecutions": {"fixture_collector.py"},
        "states:DescribeExecution": {"fixture_collector.py"},
        "s3:GetObject": {"fixture_collector.py"},
        "s3:ListBucket": {"fixture_collector.py"},
    }


def test_scanner_uses_other_modules_services_for_shared_helpers(tmp_path):
    (tmp_path / "a.py").write_text('def f(ctx):\n    return ctx.client("logs")\n')
    (tmp_path / "b.py").write_text('def g(logs):\n    logs.filter_log_events(logGroupName="x")\n')
    assert derive_actions([tmp_path / "a.py", tmp_path / "b.py"]) == {"logs:FilterLogEvents": {"b.py"}}


def test_iam_names_come_from_botocore():
    assert iam_action("cloudwatch", "GetMetricData") == "cloudwatch:GetMetricData"
    assert iam_action("stepfunctions", "GetExecutionHistory") == "states:GetExecutionHistory"
    assert iam_action("s3", "HeadObject") == "s3:GetObject"
    with pytest.raises(Exception, match="NoSuchOperation|OperationNotFound|not found"):
        iam_action("ce", "NoSuchOperation")


def test_drift_check_fails_when_a_collector_calls_an_ungranted_action(tmp_path):
    module = tmp_path / "new_collector.py"
    module.write_text('def collect(ctx):\n    ctx.client("glue").get_crawlers()\n')
    needed = set(derive_actions([*collector_modules(), module]))
    granted = policy_actions()
    assert "glue:GetCrawlers" in needed - granted


# ---- the real check ----------------------------------------------------------------------


def test_collector_policy_matches_the_collector_code_both_ways():
    modules = collector_modules()
    assert modules, "collectors/ has no modules"
    needed = derive_actions(modules)
    assert needed, "no AWS operations found in collectors/: the scan is broken"
    granted = policy_actions()
    missing = {a: sorted(m) for a, m in needed.items() if a not in granted}
    implied = set().union(*(IMPLIED.get(a, set()) for a in needed))
    extra = sorted(granted - set(needed) - implied)
    assert not missing, f"collectors call actions the CollectorReadPolicy lacks (add them): {missing}"
    assert not extra, f"CollectorReadPolicy grants actions no collector calls (remove them): {extra}"


def test_collector_policy_is_read_only():
    for action in policy_actions():
        assert "*" not in action, action
        if action == "airflow:InvokeRestApi":
            # MWAA's REST API: read-only through the resource, Airflow's Viewer role (checked below)
            assert "role/*/Viewer" in TEMPLATE.read_text(), "grant airflow:InvokeRestApi on the Viewer role only"
            continue
        if action in NOT_READS:
            if action == "s3:PutObject":
                assert "${CostExportBucket}/athena-results/*" in TEMPLATE.read_text(), "s3:PutObject on athena-results/ only"
            continue
        verb = action.split(":", 1)[1]
        assert verb.startswith(("Get", "List", "Describe", "Filter", "Head", "BatchGet", "Lookup", "Search", "Select")), (
            f"{action} is not a read action; the collector role reads only"
        )
