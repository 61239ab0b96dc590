"""Watermarks for APIs that list newest first (Step Functions executions, Glue job runs).

``NewestFirst`` keeps, per resource, the newest start time stored and the ids started at that
exact time (so equal timestamps are neither lost nor doubled), plus the ids still running, which
are looked at again on every pass until they end. Its state is one JSON watermark value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["NewestFirst"]


@dataclass
class NewestFirst:
    start: datetime | None = None  # newest start time stored
    at_start: set[str] = field(default_factory=set)  # ids started exactly at ``start``
    running: set[str] = field(default_factory=set)  # ids stored while not yet ended

    @classmethod
    def load(cls, value: str | None) -> NewestFirst:
        if not value:
            return cls()
        data = json.loads(value)
        start = datetime.fromisoformat(data["start"]) if data.get("start") else None
        return cls(start=start, at_start=set(data.get("at_start", [])), running=set(data.get("running", [])))

    def dump(self) -> str:
        return json.dumps(
            {
                "start": self.start.astimezone(UTC).isoformat() if self.start else None,
                "at_start": sorted(self.at_start),
                "running": sorted(self.running),
            },
            sort_keys=True,
        )

    def is_new(self, item_id: str, started: datetime) -> bool:
        """True for an item not stored before (newer than the mark, or at it and not seen)."""
        if self.start is None or started > self.start:
            return True
        return started == self.start and item_id not in self.at_start

    def reached(self, started: datetime) -> bool:
        """True once paging newest-first has gone past the mark: stop asking for more pages."""
        return self.start is not None and started < self.start

    def advance(self, item_id: str, started: datetime, *, ended: bool) -> None:
        """Note an item stored in this pass."""
        if self.start is None or started > self.start:
            self.start, self.at_start = started, {item_id}
        elif started == self.start:
            self.at_start.add(item_id)
        if ended:
            self.running.discard(item_id)
        else:
            self.running.add(item_id)
