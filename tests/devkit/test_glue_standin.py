"""The Glue job-run stand-in pages recorded runs as AWS does, newest first, moved to recent dates."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from devkit.localaws.glue import GlueJobRunsStandIn

RUNS = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes" / "glue" / "aws-cli__get-job-runs.json"


def test_recorded_runs_paged_newest_first(aws, now):
    recorded = json.loads(RUNS.read_text())["JobRuns"]
    glue = boto3.client("glue")
    glue.create_job(Name="my-testing-job", Role="arn:aws:iam::123456789012:role/g",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
    newest = now - timedelta(hours=1)
    aws.app(GlueJobRunsStandIn).record("my-testing-job", recorded, newest_started_at=newest)

    first = glue.get_job_runs(JobName="my-testing-job", MaxResults=2)
    second = glue.get_job_runs(JobName="my-testing-job", MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in second
    got = first["JobRuns"] + second["JobRuns"]
    assert sorted(r["Id"] for r in got) == sorted(r["Id"] for r in recorded)
    starts = [r["StartedOn"] for r in got]
    assert starts == sorted(starts, reverse=True) and starts[0] == newest
    # durations and gaps kept: the same offset on every timestamp
    by_id = {r["Id"]: r for r in recorded}
    for run in got:
        src = by_id[run["Id"]]
        assert (run["CompletedOn"] - run["StartedOn"]).total_seconds() == pytest.approx(src["CompletedOn"] - src["StartedOn"], abs=1e-3)
        assert run["ErrorMessage" if "ErrorMessage" in src else "Id"] == src["ErrorMessage" if "ErrorMessage" in src else "Id"]
    one = glue.get_job_run(JobName="my-testing-job", RunId=recorded[1]["Id"])["JobRun"]
    assert one["Attempt"] == recorded[1]["Attempt"]
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        glue.get_job_run(JobName="my-testing-job", RunId="jr_nope")
    with pytest.raises(ClientError, match="InvalidInputException"):
        glue.get_job_runs(JobName="my-testing-job", NextToken="not-a-token")
    # a job without recorded runs is moto's
    glue.create_job(Name="plain", Role="arn:aws:iam::123456789012:role/g", Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
    assert glue.get_job_runs(JobName="plain")["JobRuns"] == []
