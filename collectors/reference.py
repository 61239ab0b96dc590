"""The reference pipeline's run ledger -> ``runs`` and ``run_steps``.

The ledger (docs/CONTRACTS.md) is a SQLite file whose rows carry ``seq``, a global, strictly
increasing change counter across ``ledger_runs`` and ``ledger_steps``. A pass reads every row
with ``watermark < seq <= high`` (``high`` = the newest seq, or ``max_changes`` past the
watermark) in one read transaction, stores them, and the runner advances the watermark to
``high`` in the same transaction as the rows. A missing ledger is not an error: nothing to read.

Config ``[collectors.reference]``: ``ledger_path`` (default ``[pipeline] ledger_path`` or
``<data_dir>/ledger.db``), ``max_changes`` (rows per pass, default 200000).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collectors.base import Batch, Context, RunRow, StepRow
from pipepulse.errors import CollectorError
from pipepulse.settings import Settings, opt

__all__ = ["ReferenceCollector", "create", "ledger_runs", "ledger_steps"]

NAME = "reference"
_ledger_md = sa.MetaData()
ledger_runs = sa.Table(
    "ledger_runs",
    _ledger_md,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("pipeline", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("trigger", sa.Text),
    sa.Column("attempt", sa.Integer),
    sa.Column("scheduled_for", sa.Text),
    sa.Column("queued_at", sa.Text),
    sa.Column("started_at", sa.Text),
    sa.Column("ended_at", sa.Text),
    sa.Column("records_in", sa.Integer),
    sa.Column("records_out", sa.Integer),
    sa.Column("records_rejected", sa.Integer),
    sa.Column("bytes_in", sa.Integer),
    sa.Column("error_type", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("correlation_id", sa.Text),
    sa.Column("usage_json", sa.Text),
    sa.Column("cost_usd", sa.Float),
    sa.Column("seq", sa.Integer),
)
ledger_steps = sa.Table(
    "ledger_steps",
    _ledger_md,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("status", sa.Text),
    sa.Column("queued_at", sa.Text),
    sa.Column("started_at", sa.Text),
    sa.Column("ended_at", sa.Text),
    sa.Column("records_in", sa.Integer),
    sa.Column("records_out", sa.Integer),
    sa.Column("records_rejected", sa.Integer),
    sa.Column("error_type", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("next_retry_at", sa.Text),
    sa.Column("seq", sa.Integer),
)
RUN_STATUSES = {"QUEUED", "RUNNING", "AWAITING_RETRY", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}
TRIGGERS = {"schedule", "interval", "event", "manual", "retry"}


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


class ReferenceCollector:
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
        engine = sa.create_engine(f"sqlite:///file:{self.ledger_path.as_posix()}?mode=ro&uri=true")
        try:
            with engine.connect() as conn:
                high = conn.execute(
                    sa.select(sa.func.max(sa.func.coalesce(sa.select(sa.func.max(ledger_runs.c.seq)).scalar_subquery(), 0),
                                          sa.func.coalesce(sa.select(sa.func.max(ledger_steps.c.seq)).scalar_subquery(), 0)))
                ).scalar_one()
                high = min(int(high or 0), mark + self.max_changes)
                if high <= mark:
                    batch.details["seq"] = [mark, mark]
                    return batch
                run_rows = conn.execute(
                    sa.select(ledger_runs).where(ledger_runs.c.seq > mark, ledger_runs.c.seq <= high).order_by(ledger_runs.c.seq)
                ).mappings().all()
                step_rows = conn.execute(
                    sa.select(ledger_steps).where(ledger_steps.c.seq > mark, ledger_steps.c.seq <= high).order_by(ledger_steps.c.seq)
                ).mappings().all()
                retries = self._retries(conn, [r["run_id"] for r in run_rows])
        except sa.exc.DatabaseError as exc:
            raise CollectorError(NAME, f"cannot read the ledger {self.ledger_path}: {exc.orig}") from exc
        finally:
            engine.dispose()
        for r in run_rows:
            batch.add("runs", self._run(r, retries.get(r["run_id"], 0)))
        for s in step_rows:
            batch.add("run_steps", self._step(s))
        batch.watermarks["seq"] = str(high)
        batch.details["seq"] = [mark, high]
        return batch

    @staticmethod
    def _retries(conn: sa.Connection, run_ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            q = (
                sa.select(ledger_steps.c.run_id, sa.func.count())
                .where(ledger_steps.c.run_id.in_(chunk), ledger_steps.c.attempt > 1)
                .group_by(ledger_steps.c.run_id)
            )
            out.update({rid: int(n) for rid, n in conn.execute(q)})
        return out

    @staticmethod
    def _run(r: Any, retries: int) -> RunRow:
        where = f"run {r['run_id']}"
        trigger = r["trigger"] or "schedule"
        if trigger not in TRIGGERS:
            raise CollectorError(NAME, f"ledger {where}: unknown trigger {trigger!r}")
        return RunRow(
            run_id=f"reference:{r['run_id']}",
            pipeline=r["pipeline"],
            source="reference",
            status=_status(r["status"], where),
            trigger=trigger,
            attempt=int(r["attempt"] or 1),
            scheduled_for=_ts(r["scheduled_for"], where),
            queued_at=_ts(r["queued_at"], where),
            started_at=_ts(r["started_at"], where),
            ended_at=_ts(r["ended_at"], where),
            records_in=r["records_in"],
            records_out=r["records_out"],
            records_rejected=r["records_rejected"],
            bytes_in=r["bytes_in"],
            retries=retries,
            error_type=r["error_type"],
            error_message=r["error_message"],
            correlation_id=r["correlation_id"],
            cost_usd=r["cost_usd"],
        )

    @staticmethod
    def _step(s: Any) -> StepRow:
        where = f"step {s['run_id']}/{s['stage']}#{s['attempt']}"
        return StepRow(
            run_id=f"reference:{s['run_id']}",
            stage=s["stage"],
            attempt=int(s["attempt"]),
            status=_status(s["status"], where),
            queued_at=_ts(s["queued_at"], where),
            started_at=_ts(s["started_at"], where),
            ended_at=_ts(s["ended_at"], where),
            records_in=s["records_in"],
            records_out=s["records_out"],
            records_rejected=s["records_rejected"],
            error_type=s["error_type"],
            error_message=s["error_message"],
            next_retry_at=_ts(s["next_retry_at"], where),
        )


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
        from pipepulse.errors import ConfigError

        raise ConfigError(f"{settings.config_label}: [collectors.reference] max_changes: expected a positive number, got {max_changes}")
    return ReferenceCollector(ledger_path(settings, options), max_changes=max_changes)


