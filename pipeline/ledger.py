"""The reference pipeline's run ledger: a SQLite file, like an orchestrator's metadata DB.

The format is a contract (docs/CONTRACTS.md) read by ``collectors/reference.py``:

- ``ledger_runs``  one row per run, updated in place as the run moves through its states;
- ``ledger_steps`` one row per (run, stage, attempt);
- ``seq`` on both: a global, strictly increasing change counter. Every insert or update sets the
  row's ``seq`` to max+1 over both tables, inside the same ``BEGIN IMMEDIATE`` transaction, so a
  reader that takes ``seq > watermark`` in ``seq`` order never misses a change.

Beside those, ``ledger_inputs`` remembers which source files a successful run loaded (the
pipeline's own cursor, so "read new files" means new) and is not part of the contract.

Times are ISO-8601 UTC strings with ``+00:00``. Every status change is checked against
``pipeline.states``. One process writes at a time (SQLite's lock); writes from threads are
serialised by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import states

__all__ = ["RUN_COLUMNS", "STEP_COLUMNS", "Ledger", "iso"]

RUN_COLUMNS = (
    "run_id",
    "pipeline",
    "status",
    "trigger",
    "attempt",
    "scheduled_for",
    "queued_at",
    "started_at",
    "ended_at",
    "records_in",
    "records_out",
    "records_rejected",
    "bytes_in",
    "error_type",
    "error_message",
    "correlation_id",
    "usage_json",
    "cost_usd",
    "seq",
)
STEP_COLUMNS = (
    "run_id",
    "stage",
    "attempt",
    "status",
    "queued_at",
    "started_at",
    "ended_at",
    "records_in",
    "records_out",
    "records_rejected",
    "error_type",
    "error_message",
    "next_retry_at",
    "seq",
)

_DDL = """
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


def iso(moment: datetime | None) -> str | None:
    """``moment`` as the ledger's ISO-8601 UTC text (``...+00:00``)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class Ledger:
    """Read and write one ledger file; ``with ledger.transaction():`` batches many writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_DDL)
        self._lock = threading.RLock()
        self._depth = 0
        self._seq = 0
        self._status: dict[tuple, str] = {}  # last status written per run / step, for checks

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` around the writes inside (re-entrant)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
                self._seq = self._db.execute(
                    "SELECT max(coalesce((SELECT max(seq) FROM ledger_runs), 0),"
                    " coalesce((SELECT max(seq) FROM ledger_steps), 0))"
                ).fetchone()[0]
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                    self._status.clear()  # the cache may hold rolled-back states
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # ---- writes ---------------------------------------------------------------------------

    def write_run(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a run row (all columns but ``seq``); returns the seq it got."""
        key = ("run", row["run_id"])
        with self.transaction():
            old = self._old_status(
                key, "SELECT status FROM ledger_runs WHERE run_id = ?", (row["run_id"],)
            )
            states.check("run", old, row["status"])
            self._seq += 1
            values = [_sql(row.get(c)) for c in RUN_COLUMNS[:-1]] + [self._seq]
            self._db.execute(
                f"INSERT OR REPLACE INTO ledger_runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in RUN_COLUMNS)})",
                values,
            )
            self._status[key] = row["status"]
            return self._seq

    def write_step(self, row: Mapping[str, Any]) -> int:
        """Insert or replace a step-attempt row (all columns but ``seq``); returns its seq."""
        key = ("step", row["run_id"], row["stage"], row["attempt"])
        with self.transaction():
            old = self._old_status(
                key,
                "SELECT status FROM ledger_steps WHERE run_id = ? AND stage = ? AND attempt = ?",
                key[1:],
            )
            states.check("step", old, row["status"])
            self._seq += 1
            values = [_sql(row.get(c)) for c in STEP_COLUMNS[:-1]] + [self._seq]
            self._db.execute(
                f"INSERT OR REPLACE INTO ledger_steps ({', '.join(STEP_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in STEP_COLUMNS)})",
                values,
            )
            self._status[key] = row["status"]
            return self._seq

    def mark_inputs(self, pipeline: str, run_id: str, inputs: list[tuple[str, str]]) -> None:
        """Remember that ``run_id`` loaded these (key, etag) source files."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO ledger_inputs (pipeline, input_key, etag, run_id) VALUES (?, ?, ?, ?)",
                [(pipeline, k, e, run_id) for k, e in inputs],
            )

    def loaded_inputs(self, pipeline: str) -> set[tuple[str, str]]:
        """(key, etag) of every source file a successful run of ``pipeline`` loaded."""
        with self._lock:
            cur = self._db.execute(
                "SELECT input_key, etag FROM ledger_inputs WHERE pipeline = ?", (pipeline,)
            )
            return {(k, e) for k, e in cur}

    def forget(self, *, pipelines: list[str], start: datetime, end: datetime) -> int:
        """Delete the runs (and their steps) of ``pipelines`` scheduled in ``[start, end)``.

        A backfill calls this before replaying a window, so replaying it again gives the same
        history instead of a clash. Readers see the replayed rows again with new ``seq``s.
        """
        with self.transaction():
            marks = ",".join("?" for _ in pipelines)
            ids = [
                r[0]
                for r in self._db.execute(
                    f"SELECT run_id FROM ledger_runs WHERE pipeline IN ({marks}) AND scheduled_for >= ? AND scheduled_for < ?",
                    [*pipelines, iso(start), iso(end)],
                )
            ]
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = ",".join("?" for _ in chunk)
                self._db.execute(f"DELETE FROM ledger_steps WHERE run_id IN ({q})", chunk)
                self._db.execute(f"DELETE FROM ledger_runs WHERE run_id IN ({q})", chunk)
                self._db.execute(f"DELETE FROM ledger_inputs WHERE run_id IN ({q})", chunk)
            self._status.clear()
            return len(ids)

    # ---- reads ----------------------------------------------------------------------------

    def runs(self, *, pipeline: str | None = None) -> list[dict[str, Any]]:
        """Run rows in ``seq`` order."""
        return self._select("ledger_runs", RUN_COLUMNS, pipeline=pipeline)

    def steps(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Step-attempt rows in ``seq`` order."""
        return self._select("ledger_steps", STEP_COLUMNS, run_id=run_id)

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._select("ledger_runs", RUN_COLUMNS, run_id=run_id)
        return rows[0] if rows else None

    def last_run(self, pipeline: str) -> dict[str, Any] | None:
        """The run of ``pipeline`` that started last (None when it never ran)."""
        with self._lock:
            cur = self._db.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM ledger_runs WHERE pipeline = ? "
                "ORDER BY coalesce(started_at, queued_at) DESC LIMIT 1",
                (pipeline,),
            )
            row = cur.fetchone()
        return dict(zip(RUN_COLUMNS, row, strict=True)) if row else None

    def max_seq(self) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT max(coalesce((SELECT max(seq) FROM ledger_runs), 0),"
                " coalesce((SELECT max(seq) FROM ledger_steps), 0))"
            ).fetchone()[0]

    def _select(self, table: str, columns: tuple[str, ...], **where: Any) -> list[dict[str, Any]]:
        conds = [(k, v) for k, v in where.items() if v is not None]
        sql = f"SELECT {', '.join(columns)} FROM {table}"
        if conds:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k, _ in conds)
        sql += " ORDER BY seq"
        with self._lock:
            cur = self._db.execute(sql, [v for _, v in conds])
            return [dict(zip(columns, r, strict=True)) for r in cur]

    def _old_status(self, key: tuple, sql: str, params: tuple) -> str | None:
        if key in self._status:
            return self._status[key]
        row = self._db.execute(sql, params).fetchone()
        return row[0] if row else None


def _sql(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value
