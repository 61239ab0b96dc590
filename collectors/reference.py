"""The reference pipeline's run ledger -> ``runs`` and ``run_steps``.

The ledger (``store/ledger.py``: its tables and the ``seq`` rule) is a SQLite file whose rows
carry ``seq``, a global, strictly increasing change counter across ``ledger_runs`` and
``ledger_steps``. A pass reads every row with ``watermark < seq <= high`` (``high`` = the newest
seq, or ``max_changes`` past the watermark) in one read transaction, turns them into typed
rows, and the runner advances the watermark to ``high`` in the same transaction as the rows. A
missing ledger is not an error: nothing to read.

Config ``[collectors.reference]``: ``ledger_path`` (default ``[pipeline] ledger_path`` or
``<data_dir>/ledger.db``), ``max_changes`` (rows per pass, default 200000).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectors.base import Batch, Collector, Context, RunRow, StepRow
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt
from pipepulse.vocab import RUN_STATUSES, TRIGGERS
from store.ledger import read_changes

__all__ = ["ReferenceCollector", "create", "ledger_path"]

NAME = "reference"


def _ts(value: str | None, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CollectorError(NAME, f"ledger {where}: {value!r} is not an ISO-8601 time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _status(value: str, where: str) -> str:
    if value not in RUN_STATUSES:
        raise CollectorError(NAME, f"ledger {where}: unknown status {value!r}")
    return value


class ReferenceCollector(Collector):
    """Reads the ledger incrementally by ``seq``."""

    name = NAME

    def __init__(self, ledger_path: Path, *, max_changes: int = 200_000) -> None:
        self.ledger_path = ledger_path
        self.max_changes = max_changes

    def collect(self, ctx: Context) -> Batch:
        batch = Batch()
        if not self.ledger_path.is_file():
            batch.details["ledger"] = f"{self.ledger_path} does not exist yet"
            return batch
        mark = int(ctx.watermark("seq") or 0)
        try:
            changes = read_changes(self.ledger_path, after=mark, limit=self.max_changes)
        except sqlite3.Error as exc:
            raise CollectorError(NAME, f"cannot read the ledger {self.ledger_path}: {exc}") from exc
        batch.details["seq"] = [mark, changes.high]
        if changes.high <= mark:
            return batch
        batch.runs = [self._run(r, changes.retries.get(r["run_id"], 0)) for r in changes.runs]
        batch.steps = [self._step(s) for s in changes.steps]
        batch.watermarks["seq"] = str(changes.high)
        return batch

    @staticmethod
    def _run(r: dict[str, Any], retries: int) -> RunRow:
        where = f"run {r['run_id']}"
        trigger = r["trigger"] or "schedule"
        if trigger not in TRIGGERS:
            raise CollectorError(NAME, f"ledger {where}: unknown trigger {trigger!r}")
        return RunRow(
            **_attempt(r, where),
            pipeline=r["pipeline"],
            source="reference",
            trigger=trigger,
            attempt=int(r["attempt"] or 1),
            scheduled_for=_ts(r["scheduled_for"], where),
            bytes_in=r["bytes_in"],
            retries=retries,
            correlation_id=r["correlation_id"],
            cost_usd=r["cost_usd"],
        )

    @staticmethod
    def _step(s: dict[str, Any]) -> StepRow:
        where = f"step {s['run_id']}/{s['stage']}#{s['attempt']}"
        return StepRow(
            **_attempt(s, where),
            stage=s["stage"],
            attempt=int(s["attempt"]),
            next_retry_at=_ts(s["next_retry_at"], where),
        )


def _attempt(row: dict[str, Any], where: str) -> dict[str, Any]:
    """The columns a ledger run and step share, typed."""
    return {
        "run_id": f"reference:{row['run_id']}",
        "status": _status(row["status"], where),
        "queued_at": _ts(row["queued_at"], where),
        "started_at": _ts(row["started_at"], where),
        "ended_at": _ts(row["ended_at"], where),
        "records_in": row["records_in"],
        "records_out": row["records_out"],
        "records_rejected": row["records_rejected"],
        "error_type": row["error_type"],
        "error_message": row["error_message"],
    }


def ledger_path(settings: Settings, options: dict[str, Any] | None = None) -> Path:
    """Where the ledger is: ``[collectors.reference] ledger_path``, ``[pipeline] ledger_path``, or the data folder."""
    label = settings.config_label
    own = opt(options or {}, "ledger_path", str, label, "collectors.reference")
    if own:
        return Path(own)
    pipe = settings.section("pipeline")
    given = opt(pipe, "ledger_path", str, label, "pipeline")
    return Path(given) if given else settings.data_dir / "ledger.db"


def create(settings: Settings) -> ReferenceCollector:
    options = dict(settings.section("collectors").get("reference", {}) or {})
    max_changes = opt(options, "max_changes", int, settings.config_label, "collectors.reference", default=200_000)
    if max_changes <= 0:
        raise ConfigError(f"{settings.config_label}: [collectors.reference] max_changes: expected a positive number, got {max_changes}")
    return ReferenceCollector(ledger_path(settings, options), max_changes=max_changes)


