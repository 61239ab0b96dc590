"""The reference pipeline's run ledger: a SQLite file, like an orchestrator's metadata database,
and every SQL statement run on it. This module is the contract between the writer (``pipeline/``,
through ``pipeline.ledger.Ledger``, which adds its state checks) and the reader
(``collectors/reference.py``, through ``read_changes``). It uses the standard library's
``sqlite3`` only, so ``pipeline/`` may import it without the rest of ``store/`` (the one import
of ``store/`` that ``pipeline/`` has; docs/architecture.md).

- ``ledger_runs``: one row per run, updated in place as the run moves through its states
  (``pipepulse.vocab``); ``run_id`` is bare (the collector stores ``reference:<run_id>``).
- ``ledger_steps``: one row per (run, stage, attempt).
- ``seq`` on both: a global, strictly increasing change counter. Every insert or update sets the
  row's ``seq`` to max + 1 over both tables, inside the same ``BEGIN IMMEDIATE`` transaction,
  so a reader that takes ``seq > watermark`` in ``seq`` order never misses a change.
- Times are ISO-8601 UTC text with ``+00:00`` (``iso``).
- ``ledger_inputs`` remembers which source files a successful run loaded (the pipeline's own
  cursor, so "read new files" means new); it is not part of the contract.

One process writes at a time (SQLite's lock); writes from threads are serialised by a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipepulse.files import create_private, private_dir

__all__ = ["RUN_COLUMNS", "STEP_COLUMNS", "LedgerChanges", "LedgerFile", "iso", "read_changes"]

RUN_COLUMNS = (
    "run_id", "pipeline", "status", "trigger", "attempt", "scheduled_for", "queued_at", "started_at",
    "ended_at", "records_in", "records_out", "records_rejected", "bytes_in", "error_type",
    "error_message", "correlation_id", "usage_json", "cost_usd", "seq",
)
STEP_COLUMNS = (
    "run_id", "stage", "attempt", "status", "queued_at", "started_at", "ended_at", "records_in",
    "records_out", "records_rejected", "error_type", "error_message", "next_retry_at", "seq",
)

DDL = """
CREATE TABLE IF NOT EXISTS ledger_runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    attempt INT NOT NULL DEFAULT 1,
    scheduled_for TEXT,
    queued_at TEXT,
    started_at TEXT,
    ended_at TEXT,
    records_in INT,
    records_out INT,
    records_rejected INT,
    bytes_in INT,
    error_type TEXT,
    error_message TEXT,
    correlation_id TEXT,
    usage_json TEXT,   -- resource usage of the run, JSON object (see pipeline.cost)
    cost_usd REAL,     -- usage x public prices
    seq INT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_ledger_runs_seq ON ledger_runs (seq);
CREATE INDEX IF NOT EXISTS ix_ledger_runs_pipeline_started_at ON ledger_runs (pipeline, started_at);
CREATE TABLE IF NOT EXISTS ledger_steps (
    run_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    attempt INT NOT NULL,
    status TEXT NOT NULL,
    queued_at TEXT,
    started_at TEXT,
    ended_at TEXT,
    records_in INT,
    records_out INT,
    records_rejected INT,
    error_type TEXT,
    error_message TEXT,
    next_retry_at TEXT,
    seq INT NOT NULL,
    PRIMARY KEY (run_id, stage, attempt)
);
CREATE INDEX IF NOT EXISTS ix_ledger_steps_seq ON ledger_steps (seq);
CREATE TABLE IF NOT EXISTS ledger_inputs (
    pipeline TEXT NOT NULL,
    input_key TEXT NOT NULL,
    etag TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (pipeline, input_key, etag)
);
"""

MAX_SEQ = (
    "SELECT max(coalesce((SELECT max(seq) FROM ledger_runs), 0), coalesce((SELECT max(seq) FROM ledger_steps), 0))"
)
INSERT_RUN = (
    "INSERT OR REPLACE INTO ledger_runs (run_id, pipeline, status, trigger, attempt, scheduled_for, queued_at,"
    " started_at, ended_at, records_in, records_out, records_rejected, bytes_in, error_type, error_message,"
    " correlation_id, usage_json, cost_usd, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_STEP = (
    "INSERT OR REPLACE INTO ledger_steps (run_id, stage, attempt, status, queued_at, started_at, ended_at,"
    " records_in, records_out, records_rejected, error_type, error_message, next_retry_at, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RUN_STATUS = "SELECT status FROM ledger_runs WHERE run_id = ?"
STEP_STATUS = "SELECT status FROM ledger_steps WHERE run_id = ? AND stage = ? AND attempt = ?"
MARK_INPUT = "INSERT OR REPLACE INTO ledger_inputs (pipeline, input_key, etag, run_id) VALUES (?, ?, ?, ?)"
LOADED_INPUTS = "SELECT input_key, etag FROM ledger_inputs WHERE pipeline = ?"
# ``?`` holding a JSON array, read with json_each: one statement whatever the number of values.
RUNS_SCHEDULED_IN = (
    "SELECT run_id FROM ledger_runs WHERE pipeline IN (SELECT value FROM json_each(?))"
    " AND scheduled_for >= ? AND scheduled_for < ?"
)
DELETE_STEPS_OF = "DELETE FROM ledger_steps WHERE run_id IN (SELECT value FROM json_each(?))"
DELETE_RUNS = "DELETE FROM ledger_runs WHERE run_id IN (SELECT value FROM json_each(?))"
DELETE_INPUTS_OF = "DELETE FROM ledger_inputs WHERE run_id IN (SELECT value FROM json_each(?))"
ALL_RUNS = "SELECT * FROM ledger_runs ORDER BY seq"
RUNS_OF_PIPELINE = "SELECT * FROM ledger_runs WHERE pipeline = ? ORDER BY seq"
ONE_RUN = "SELECT * FROM ledger_runs WHERE run_id = ?"
LAST_RUN = "SELECT * FROM ledger_runs WHERE pipeline = ? ORDER BY coalesce(started_at, queued_at) DESC LIMIT 1"
ALL_STEPS = "SELECT * FROM ledger_steps ORDER BY seq"
STEPS_OF_RUN = "SELECT * FROM ledger_steps WHERE run_id = ? ORDER BY seq"
RUNS_CHANGED = "SELECT * FROM ledger_runs WHERE seq > ? AND seq <= ? ORDER BY seq"
STEPS_CHANGED = "SELECT * FROM ledger_steps WHERE seq > ? AND seq <= ? ORDER BY seq"
RETRIES_OF = (
    "SELECT run_id, count(*) FROM ledger_steps WHERE run_id IN (SELECT value FROM json_each(?)) AND attempt > 1"
    " GROUP BY run_id"
)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as the ledger's ISO-8601 UTC text (``...+00:00``)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _value(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor]


class LedgerFile:
    """Read and write one ledger file; ``with ledger.transaction():`` batches many writes.

    The storage half of the ledger: ``pipeline.ledger.Ledger`` adds the state-machine checks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        create_private(self.path)  # 0600: SQLite gives its -wal/-shm files the same mode
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(DDL)
        self._lock = threading.RLock()
        self._depth = 0
        self._seq = 0

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LedgerFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` around the writes inside (re-entrant)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
                self._seq = self._db.execute(MAX_SEQ).fetchone()[0]
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                    self._rolled_back()
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    def _rolled_back(self) -> None:
        """Called after a rollback (subclasses drop what they cached)."""

    # ---- writes ---------------------------------------------------------------------------

    def insert_run(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a run row (every column but ``seq``); returns the seq it got."""
        with self.transaction():
            self._seq += 1
            self._db.execute(INSERT_RUN, [_value(row.get(c)) for c in RUN_COLUMNS[:-1]] + [self._seq])
            return self._seq

    def insert_step(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a step-attempt row (every column but ``seq``); returns its seq."""
        with self.transaction():
            self._seq += 1
            self._db.execute(INSERT_STEP, [_value(row.get(c)) for c in STEP_COLUMNS[:-1]] + [self._seq])
            return self._seq

    def mark_inputs(self, pipeline: str, run_id: str, inputs: list[tuple[str, str]]) -> None:
        """Remember that ``run_id`` loaded these (key, etag) source files."""
        with self.transaction():
            self._db.executemany(MARK_INPUT, [(pipeline, k, e, run_id) for k, e in inputs])

    def forget(self, *, pipelines: list[str], start: datetime, end: datetime) -> int:
        """Delete the runs (and their steps and inputs) of ``pipelines`` scheduled in ``[start, end)``."""
        with self.transaction():
            found = self._db.execute(RUNS_SCHEDULED_IN, (json.dumps(pipelines), iso(start), iso(end)))
            ids = json.dumps([r[0] for r in found])
            self._db.execute(DELETE_STEPS_OF, (ids,))
            n = self._db.execute(DELETE_RUNS, (ids,)).rowcount
            self._db.execute(DELETE_INPUTS_OF, (ids,))
            return int(n)

    # ---- reads ----------------------------------------------------------------------------

    def run_status(self, run_id: str) -> str | None:
        """The stored status of a run, or None when it is not in the ledger."""
        row = self._db.execute(RUN_STATUS, (run_id,)).fetchone()
        return row[0] if row else None

    def step_status(self, run_id: str, stage: str, attempt: int) -> str | None:
        """The stored status of one step attempt, or None."""
        row = self._db.execute(STEP_STATUS, (run_id, stage, attempt)).fetchone()
        return row[0] if row else None

    def loaded_inputs(self, pipeline: str) -> set[tuple[str, str]]:
        """(key, etag) of every source file a successful run of ``pipeline`` loaded."""
        with self._lock:
            return {(k, e) for k, e in self._db.execute(LOADED_INPUTS, (pipeline,))}

    def runs(self, *, pipeline: str | None = None) -> list[dict[str, Any]]:
        """Run rows in ``seq`` order."""
        with self._lock:
            if pipeline is None:
                return _rows(self._db.execute(ALL_RUNS))
            return _rows(self._db.execute(RUNS_OF_PIPELINE, (pipeline,)))

    def steps(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Step-attempt rows in ``seq`` order."""
        with self._lock:
            if run_id is None:
                return _rows(self._db.execute(ALL_STEPS))
            return _rows(self._db.execute(STEPS_OF_RUN, (run_id,)))

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run row, or None."""
        with self._lock:
            rows = _rows(self._db.execute(ONE_RUN, (run_id,)))
        return rows[0] if rows else None

    def last_run(self, pipeline: str) -> dict[str, Any] | None:
        """The run of ``pipeline`` that started last (None when it never ran)."""
        with self._lock:
            rows = _rows(self._db.execute(LAST_RUN, (pipeline,)))
        return rows[0] if rows else None

    def max_seq(self) -> int:
        """The newest ``seq`` (0 for an empty ledger)."""
        with self._lock:
            return int(self._db.execute(MAX_SEQ).fetchone()[0])


# ---- the reader's side: what changed since a watermark ---------------------------------------


@dataclass(frozen=True)
class LedgerChanges:
    """Rows with ``after < seq <= high``, and per run the number of retried step attempts."""

    after: int
    high: int
    runs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    retries: dict[str, int]  # bare run id -> step attempts after the first, of the runs read


def read_changes(path: Path, *, after: int, limit: int) -> LedgerChanges:
    """The changes after seq ``after`` (at most ``limit`` seqs), read in one read transaction of
    the ledger opened read-only. Raises ``sqlite3.Error`` when the file cannot be read."""
    db = sqlite3.connect(f"file:{urllib.request.pathname2url(str(path))}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")
        high = min(int(db.execute(MAX_SEQ).fetchone()[0] or 0), after + limit)
        if high <= after:
            return LedgerChanges(after, after, [], [], {})
        runs = _rows(db.execute(RUNS_CHANGED, (after, high)))
        steps = _rows(db.execute(STEPS_CHANGED, (after, high)))
        retries = {rid: int(n) for rid, n in db.execute(RETRIES_OF, (json.dumps([r["run_id"] for r in runs]),))}
        db.execute("COMMIT")
        return LedgerChanges(after, high, runs, steps, retries)
    finally:
        db.close()
