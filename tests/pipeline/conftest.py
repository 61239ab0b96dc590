"""Fixtures for the reference pipeline's tests: a runtime on the local AWS with a fixed clock.

A test that takes ``runtime`` (or ``clock``, to build a runtime of its own) runs the pipeline, which
sends its metrics and log events with the clock's times: such a test is marked ``aws_clock`` here, so its ``now`` (and ``clock``) start
from ``clocks.AWS_NOW``, near the wall clock, as CloudWatch requires.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from pipeline.config import PipelineSection
from pipeline.run import Runtime
from pipepulse import retries
from pipepulse.settings import Prices


def pytest_collection_modifyitems(items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        if ("runtime" in names or "clock" in names) and "tests/pipeline/" in item.nodeid:
            item.add_marker(pytest.mark.aws_clock)


class SimClock:
    """A clock that only moves when slept on; records every sleep."""

    def __init__(self, start):
        self.t = start
        self.sleeps: list[float] = []

    def __call__(self):
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def clock(now):
    return SimClock(now)


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(retries, "PIPELINE_STAGES", retries.Backoff(base=0.0, cap=0.0))


@pytest.fixture
def section(tmp_path):
    return PipelineSection(
        ledger_path=tmp_path / "ledger.db",
        source="s3://landing/incoming",
        output="s3://lake/curated",
        quarantine="s3://lake/quarantine",
        export_bucket="billing",
    )


@pytest.fixture
def runtime(aws, section, clock):
    rt = Runtime.create(section, Prices(), clock=clock, sleep=clock.sleep, rng=random.Random(1))
    for st in (rt.source, rt.output, rt.quarantine):
        st.ensure()
    yield rt
    rt.close()
