"""The tests' clocks (tests/clocks.py) and the local AWS's own clock checks."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from clocks import AWS_NOW, FIXED_NOW, WALL_AT_START, aws_now


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        (datetime(2026, 12, 5, 10, 26, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC)),
        (datetime(2026, 12, 5, 0, 0, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC)),
        (datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC)),
        (datetime(2028, 1, 1, 0, 0, 30, tzinfo=UTC), datetime(2027, 12, 31, 12, tzinfo=UTC)),
        (datetime(2028, 3, 1, 1, 0, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),
    ],
)
def test_aws_now_is_noon_of_the_day_before(wall, expected):
    assert aws_now(wall) == expected


def test_aws_now_leaves_room_on_both_sides_of_the_wall_clock():
    # what tests/clocks.py promises a test marked aws_clock: AWS_NOW - 12 days is inside
    # CloudWatch's 14 days, and AWS_NOW + 12 hours is not ahead of the wall clock
    assert WALL_AT_START - timedelta(days=14) < AWS_NOW - timedelta(days=12)
    assert AWS_NOW + timedelta(hours=12) <= WALL_AT_START
    assert FIXED_NOW == datetime(2026, 11, 20, 12, tzinfo=UTC) and FIXED_NOW.weekday() == 4


def test_an_unmarked_test_gets_the_fixed_moment(now):
    assert now == FIXED_NOW


@pytest.mark.aws_clock
def test_the_local_aws_checks_times_against_the_wall_clock_as_aws_does(aws, now):
    assert now == AWS_NOW
    wall = datetime.now(UTC)
    cw = boto3.client("cloudwatch")

    def put(at):
        cw.put_metric_data(Namespace="Clock", MetricData=[{"MetricName": "m", "Value": 1.0, "Timestamp": at}])

    put(now - timedelta(days=12))
    put(wall + timedelta(hours=1))
    for at, words in ((wall - timedelta(days=15), "within the past two weeks"), (wall + timedelta(hours=3), "two hours in the future")):
        with pytest.raises(ClientError) as err:
            put(at)
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue" and words in str(err.value)

    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="clock")
    logs.create_log_stream(logGroupName="clock", logStreamName="s")
    events = [{"timestamp": int(at.timestamp() * 1000), "message": m}
              for at, m in ((wall - timedelta(days=15), "too old"), (now - timedelta(days=12), "kept"), (now, "kept too"))]
    answer = logs.put_log_events(logGroupName="clock", logStreamName="s", logEvents=events)
    assert answer["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}
    got = logs.get_log_events(logGroupName="clock", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["kept", "kept too"]

    # Under .ci/run's faketime step: this process and moto's server thread both see the faked date
    after = os.environ.get("PIPEPULSE_TEST_WALL_CLOCK_AFTER")
    if after:
        floor = datetime.fromisoformat(after).replace(tzinfo=UTC)
        created = logs.describe_log_groups(logGroupNamePrefix="clock")["logGroups"][0]["creationTime"]
        assert wall > floor and datetime.fromtimestamp(created / 1000, UTC) > floor, (wall, created)
