from __future__ import annotations

import os
import sys

import boto3
import pytest
import requests

from cli.awsenv import advertise_local_aws, aws_environment
from pipepulse.errors import ConfigError
from pipepulse.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch):
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "MOTO_PORT"):
        monkeypatch.delenv(k, raising=False)


def test_a_running_demo_local_aws_is_reused(local_aws, tmp_path, clean_env):
    local_aws.reset()
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path)})
    assert settings.local_aws
    with advertise_local_aws(settings, local_aws.endpoint) as advert:
        assert advert.exists()
        with aws_environment(settings) as target:
            assert (target.kind, target.endpoint, target.server) == ("local", local_aws.endpoint, None)
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="seen-by-the-demo")
    assert not advert.exists()
    names = [b["Name"] for b in boto3.client("s3", region_name="us-east-1", endpoint_url=local_aws.endpoint,
                                             aws_access_key_id="x", aws_secret_access_key="x").list_buckets()["Buckets"]]
    assert names == ["seen-by-the-demo"]
    assert "AWS_ENDPOINT_URL" not in os.environ  # restored


def test_without_a_running_one_a_local_aws_lives_for_the_command_when_asked_for(tmp_path, clean_env):
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path), "PIPEPULSE_LOCAL_AWS": "true"})
    with aws_environment(settings) as target:
        assert target.kind == "local" and target.server is not None
        endpoint = target.endpoint
        assert os.environ["AWS_ENDPOINT_URL"] == endpoint
        assert requests.get(f"{endpoint}/moto-api/", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint}/moto-api/", timeout=2)
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_a_given_endpoint_or_real_aws_starts_nothing(tmp_path, clean_env):
    given = load_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PIPEPULSE_DATA_DIR": str(tmp_path)})
    with aws_environment(given) as target:
        assert (target.kind, target.endpoint, target.server) == ("endpoint", "http://127.0.0.1:9", None)
    real = load_settings({"PIPEPULSE_LOCAL_AWS": "false", "PIPEPULSE_DATA_DIR": str(tmp_path)})
    with aws_environment(real) as target:
        assert (target.kind, target.server) == ("aws", None)
        assert "AWS_ENDPOINT_URL" not in os.environ


def test_without_the_devkit_a_local_aws_is_a_clear_error(tmp_path, clean_env, monkeypatch):
    # an installation from requirements.txt alone (the runtime image) has no devkit package
    monkeypatch.setitem(sys.modules, "devkit.localaws", None)
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path), "PIPEPULSE_LOCAL_AWS": "true"})
    with pytest.raises(ConfigError) as err, aws_environment(settings):
        pass
    assert str(err.value) == (
        "no AWS endpoint or credentials are configured, and the local AWS pipepulse would start instead needs "
        "pipepulse's development kit (the devkit package and moto; devkit.localaws is not installed): configure AWS "
        "credentials (or an instance role) and set PIPEPULSE_LOCAL_AWS=false, or install it from a checkout with "
        "`make install`, or `pip install -r requirements-dev.txt` then `pip install -e .`"
    )
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_no_empty_local_aws_is_started_unless_asked_for(tmp_path, clean_env):
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path)})
    assert settings.local_aws and not settings.local_aws_explicit
    with pytest.raises(ConfigError) as err, aws_environment(settings):
        pass
    assert str(err.value) == (
        f"no AWS is configured (no config file, no AWS credentials, no endpoint, and no demo running in the data "
        f"folder {tmp_path}): configure AWS credentials "
        "(AWS_PROFILE or an instance role), or set AWS_ENDPOINT_URL / [aws] endpoint_url, or run `make demo` "
        "(or `pipepulse demo up`) and use its config (`--config examples/demo.toml`), or pass --local-aws for an "
        "empty local AWS for this command"
    )
    assert "AWS_ENDPOINT_URL" not in os.environ
    with aws_environment(settings, start=True) as target:  # --local-aws
        assert target.kind == "local" and target.server is not None


def test_a_stopped_demo_is_named(tmp_path, clean_env):
    from pipepulse.settings import DEMO_MARKER

    (tmp_path / DEMO_MARKER).write_text("")
    settings = load_settings({"PIPEPULSE_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"^the demo's local AWS is not running \(data folder .*\): start it with "
                       r"`make demo` or `pipepulse demo up`"), aws_environment(settings):
        pass
