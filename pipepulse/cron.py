"""Cron expressions (5 fields, UTC): validation and the times a schedule fires."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from croniter import croniter

__all__ = ["CronSchedule"]


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
