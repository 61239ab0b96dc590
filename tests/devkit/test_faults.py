"""The fault injector answers in each protocol's own error encoding, so botocore reads the code."""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from devkit.localaws.faults import FaultInjector, cbor_encode

NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def faults(aws):
    return aws.app(FaultInjector)


@pytest.mark.parametrize(
    ("service", "call", "rule_service", "operation"),
    [
        ("stepfunctions", lambda c: c.list_state_machines(), "stepfunctions", "ListStateMachines"),  # JSON 1.0
        ("glue", lambda c: c.get_jobs(), "glue", "GetJobs"),  # JSON 1.1
        ("cloudwatch", lambda c: c.list_metrics(), "cloudwatch", "ListMetrics"),  # smithy-rpc-v2-cbor
        ("sts", lambda c: c.get_caller_identity(), "sts", "GetCallerIdentity"),  # query XML
        ("s3", lambda c: c.list_buckets(), "s3", "GET /"),  # rest-xml
    ],
)
def test_error_code_reaches_botocore(faults, service, call, rule_service, operation):
    client = boto3.client(service, config=NO_RETRY)
    rule = faults.add(service=rule_service, operation=operation, code="ThrottlingException", status=400, times=1)
    with pytest.raises(ClientError) as err:
        call(client)
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert rule.hits == 1
    call(client)  # the rule is used up: the real answer comes back
    assert rule.hits == 1


def test_rules_over_http_and_5xx(aws, faults):
    url = f"{aws.endpoint}/pipepulse-api/faults"
    r = requests.post(url, json={"service": "logs", "operation": "DescribeLogGroups", "code": "ServiceUnavailableException",
                                 "status": 503, "times": 2}, timeout=5)
    assert r.status_code == 200
    logs = boto3.client("logs", config=NO_RETRY)
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            logs.describe_log_groups()
        assert (err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            "ServiceUnavailableException", 503)
    assert logs.describe_log_groups()["logGroups"] == []
    state = requests.get(url, timeout=5).json()
    assert [(r["operation"], r["hits"]) for r in state["rules"]] == [("DescribeLogGroups", 2)]
    assert requests.post(url, json={"bogus": 1}, timeout=5).status_code == 400
    requests.delete(url, timeout=5)
    assert requests.get(url, timeout=5).json()["rules"] == []


def test_slow_answer_times_out(faults):
    faults.add(service="glue", operation="GetJobs", code=None, delay_seconds=1.0, times=1)
    glue = boto3.client("glue", config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3))
    with pytest.raises(ReadTimeoutError):
        glue.get_jobs()


def test_cbor_encoding():
    assert cbor_encode({"a": 1}) == bytes([0xA1, 0x61, ord("a"), 0x01])
    assert cbor_encode("x" * 30)[:2] == bytes([0x78, 30])
    assert cbor_encode([None, True, False, -1, 500]) == bytes([0x85, 0xF6, 0xF5, 0xF4, 0x20, 0x19, 0x01, 0xF4])
