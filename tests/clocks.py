"""The tests' two fixed moments (importable by test modules: ``from clocks import AWS_NOW``).

``FIXED_NOW`` is a moment in the calendar: Friday 2026-11-20 12:00 UTC. Tests whose times never
reach a clock-checking AWS API use it, so their dates, weekdays and month ends are always the same.

``AWS_NOW`` is noon UTC of the day before the wall clock, taken once per test session. AWS (and
moto, like AWS) compares some timestamps with its own clock: PutLogEvents keeps only events from
the last 14 days up to 2 hours ahead, and PutMetricData refuses the whole call for a datum outside
that window (``tests/conftest.py`` makes the local server refuse them too). A test that sends such
times is marked ``aws_clock``: its ``now`` fixture is ``AWS_NOW``, it derives every expected
value from it, and CI runs it again under ``faketime`` more than a year ahead (``.ci/run``).

Noon of yesterday keeps the time of day of ``FIXED_NOW`` and leaves room on both sides: a test
may send times from ``AWS_NOW - 12 days`` (13.5 days before the wall clock at most) up to
``AWS_NOW + 12 hours`` (never past the wall clock's midnight, so never ahead of AWS's clock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["AWS_NOW", "FIXED_NOW", "WALL_AT_START", "aws_now"]

FIXED_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def aws_now(wall: datetime) -> datetime:
    """Noon UTC of the day before ``wall``."""
    day = wall.astimezone(UTC) - timedelta(days=1)
    return day.replace(hour=12, minute=0, second=0, microsecond=0)


WALL_AT_START = datetime.now(UTC)
AWS_NOW = aws_now(WALL_AT_START)
