"""Cron expressions (5 fields, UTC): validation and the times a schedule fires."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from croniter import croniter

__all__ = ["CronSchedule", "eventbridge_expression"]


class CronSchedule:
    """A 5-field cron expression evaluated in UTC. Raises ValueError on a bad expression."""

    def __init__(self, expression: str) -> None:
        expression = expression.strip()
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise ValueError(
                f"{expression!r} is not a 5-field cron expression (minute hour day month weekday), "
                "e.g. '0 6 * * *' for 06:00 UTC daily"
            )
        self.expression = expression

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r})"

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment``."""
        return croniter(self.expression, _utc(moment)).get_next(datetime).astimezone(UTC)

    def previous_at_or_before(self, moment: datetime) -> datetime:
        """The last firing at or before ``moment``."""
        m = _utc(moment)
        if croniter.match(self.expression, m) and m.second == 0 and m.microsecond == 0:
            return m
        return croniter(self.expression, m).get_prev(datetime).astimezone(UTC)

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Firings in ``[start, end)``."""
        it = croniter(self.expression, _utc(start).timestamp() - 1e-6)
        while True:
            t = it.get_next(datetime).astimezone(UTC)
            if t >= _utc(end):
                return
            yield t


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_EB_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def eventbridge_expression(expression: str) -> str:
    """The same schedule as an EventBridge ``cron(...)`` expression (six fields, UTC).

    EventBridge differs from cron in three ways: a sixth field (year), ``?`` in one of
    day-of-month and day-of-week (it refuses ``*`` in both), and day-of-week numbers 1-7 from
    Sunday; weekday numbers are written as names (``MON``) so neither reading is needed. A
    schedule naming both a day of month and a day of week (cron's "either" rule) has no
    EventBridge equivalent and raises ValueError.
    """
    minute, hour, dom, month, dow = CronSchedule(expression).expression.split()
    if dom != "*" and dow != "*":
        raise ValueError(f"{expression!r}: EventBridge cannot fire on a day of month *or* a day of week; use one")
    if dow == "*":
        dow = "?"
    else:
        dom = "?"
        dow = _eb_weekdays(dow, expression)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def _eb_weekdays(field: str, expression: str) -> str:
    def name(token: str) -> str:
        if token.isdigit():
            n = int(token)
            if not 0 <= n <= 7:
                raise ValueError(f"{expression!r}: weekday {n} is out of range 0-7")
            return _EB_DAYS[n % 7]
        return token.upper()

    parts = []
    for item in field.split(","):
        if "/" in item:
            raise ValueError(f"{expression!r}: write weekday steps as a list (1,3,5) for EventBridge")
        lo, _, hi = item.partition("-")
        parts.append(f"{name(lo)}-{name(hi)}" if hi else name(lo))
    return ",".join(parts)
