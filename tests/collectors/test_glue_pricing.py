"""Glue run prices by hand: worker types, Flex, Python shell, minimum billing by Glue version."""

from __future__ import annotations

import json

import pytest

from collectors.glue import dpu_hour_price, dpu_seconds
from pipepulse.settings import Prices


@pytest.mark.parametrize(("run", "dpu_s"), [
    ({"WorkerType": "G.025X", "NumberOfWorkers": 2, "GlueVersion": "3.0", "ExecutionTime": 300}, 2 * 0.25 * 300),
    ({"WorkerType": "G.1X", "NumberOfWorkers": 10, "GlueVersion": "4.0", "ExecutionTime": 45}, 10 * 1 * 60),  # 1-minute minimum
    ({"WorkerType": "G.2X", "NumberOfWorkers": 5, "GlueVersion": "4.0", "ExecutionTime": 120}, 5 * 2 * 120),
    ({"WorkerType": "G.4X", "NumberOfWorkers": 3, "GlueVersion": "4.0", "ExecutionTime": 100}, 3 * 4 * 100),
    ({"WorkerType": "G.8X", "NumberOfWorkers": 2, "GlueVersion": "4.0", "ExecutionTime": 100}, 2 * 8 * 100),
    ({"WorkerType": "Z.2X", "NumberOfWorkers": 4, "GlueVersion": "3.0", "ExecutionTime": 90}, 4 * 2 * 90),
    ({"MaxCapacity": 0.0625, "GlueVersion": "3.0", "ExecutionTime": 20}, 0.0625 * 60),  # Python shell: 1 minute minimum
    ({"MaxCapacity": 1.0, "GlueVersion": "1.0", "ExecutionTime": 30}, 1 * 60),  # Python shell 1 DPU, even on 1.0
    ({"DPUSeconds": 1234.5, "WorkerType": "G.1X", "NumberOfWorkers": 10, "ExecutionTime": 500}, 1234.5),  # auto scaling
])
def test_dpu_seconds_by_hand(run, dpu_s):
    assert dpu_seconds(run) == pytest.approx(dpu_s)


def test_flex_at_its_own_price_and_overridable():
    run = {"WorkerType": "G.1X", "NumberOfWorkers": 10, "GlueVersion": "4.0", "ExecutionTime": 3600, "ExecutionClass": "FLEX"}
    assert dpu_seconds(run) / 3600 * dpu_hour_price(run, Prices()) == pytest.approx(10 * 0.29)
    assert dpu_seconds(run) / 3600 * dpu_hour_price({**run, "ExecutionClass": "STANDARD"}, Prices()) == pytest.approx(10 * 0.44)
    assert dpu_hour_price(run, Prices(glue_flex_dpu_hour=0.2)) == 0.2


def test_real_run_shapes_priced(shared_dir):
    folder = shared_dir / "data" / "aws-shapes" / "glue"
    runs = json.loads((folder / "aws-cli__get-job-runs.json").read_text())["JobRuns"]
    # G.1X x 10 on Glue 2.0: 117 s, 110 s, 113 s
    assert [dpu_seconds(r) for r in runs] == [10 * 117, 10 * 110, 10 * 113]
    shell = json.loads((folder / "aws-samples-serverless-patterns__sfn-glue-sam__startJobRun-sync-output.json").read_text())["glue_job_result"]
    # Python shell, MaxCapacity 1, Glue 1.0, 49 s: billed one minute at the standard price
    assert dpu_seconds(shell) / 3600 * dpu_hour_price(shell, Prices()) == pytest.approx(60 / 3600 * 0.44)
