"""The reference pipeline's run ledger, with every status change checked against its state machine.

The file, its tables and every SQL statement are ``store.ledger`` (the contract the reference
collector reads); this adds what the pipeline owns: each write of a run or a step attempt goes
through ``pipeline.states.check``, so an impossible transition is a bug caught at once, not a
bad row. The last status written per run and step is cached (and dropped on a rollback).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline import states
from store.ledger import RUN_COLUMNS, STEP_COLUMNS, LedgerFile, iso

__all__ = ["RUN_COLUMNS", "STEP_COLUMNS", "Ledger", "iso"]


class Ledger(LedgerFile):
    """Read and write one ledger file; ``with ledger.transaction():`` batches many writes."""

    def __init__(self, path: Any) -> None:
        super().__init__(path)
        self._status: dict[tuple, str] = {}  # last status written per run / step, for checks

    def write_run(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a run row (all columns but ``seq``); returns the seq it got."""
        key = ("run", row["run_id"])
        with self.transaction():
            old = self._status[key] if key in self._status else self.run_status(row["run_id"])
            states.check("run", old, row["status"])
            seq = self.insert_run(row)
            self._status[key] = row["status"]
            return seq

    def write_step(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a step-attempt row (all columns but ``seq``); returns its seq."""
        key = ("step", row["run_id"], row["stage"], row["attempt"])
        with self.transaction():
            old = self._status[key] if key in self._status else self.step_status(*key[1:])
            states.check("step", old, row["status"])
            seq = self.insert_step(row)
            self._status[key] = row["status"]
            return seq

    def forget(self, *, pipelines: list[str], start: datetime, end: datetime) -> int:
        """Delete the runs (and their steps) of ``pipelines`` scheduled in ``[start, end)``.

        A backfill calls this before replaying a window, so replaying it again gives the same
        history instead of a clash. Readers see the replayed rows again with new ``seq``s.
        """
        with self.transaction():
            n = super().forget(pipelines=pipelines, start=start, end=end)
            self._status.clear()
            return n

    def _rolled_back(self) -> None:
        self._status.clear()  # the cache may hold rolled-back states
