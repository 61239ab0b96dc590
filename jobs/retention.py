"""Retention: prune raw rows older than the configured days, keep the daily rollups.

Config (all keys optional; the defaults keep 90 days of raw data, enough for the demo and for
the detectors' baselines)::

    [retention]
    batch_size = 5000            # rows per delete transaction
    metric_points_days = 90      # raw CloudWatch datapoints
    run_logs_days = 30           # pipeline log events
    run_steps_days = 90          # per-stage attempts
    collector_runs_days = 90     # pipepulse's own pass records
    notifications_days = 180     # sent-alert ledger (only dedups items this recent)

On PostgreSQL the job also keeps the monthly partitions of ``metric_points`` and ``cost_daily``
(``store/partitions.py``): it creates the current month's and the next three months' partitions
on every pass, and drops a ``metric_points`` month partition whole once the month lies entirely
before the cutoff (the partly expired month is still pruned by row).

``run_daily`` and ``cost_daily`` are never pruned: the dashboard's history comes from them.
Runs themselves are kept too (one row per run is small, and freshness, the run list and the
rollup refresh read them). Each batch is its own transaction, so a big first purge neither
holds SQLite's write lock nor a PostgreSQL transaction for long; re-running is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt
from store.partitions import PARTITIONED, drop_expired, ensure_months
from store.retention import PRUNABLE, count_older, delete_batch

__all__ = ["DEFAULT_DAYS", "RetentionConfig", "plan", "retention_config", "run"]

log = logging.getLogger(__name__)

DEFAULT_DAYS: dict[str, int] = {
    "metric_points": 90,
    "run_logs": 30,
    "run_steps": 90,
    "collector_runs": 90,
    "notifications": 180,
}
DEFAULT_BATCH = 5000
assert set(DEFAULT_DAYS) == set(PRUNABLE), "every prunable table needs a default"


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """Days to keep per table, and how many rows one delete transaction may touch."""

    days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    batch_size: int = DEFAULT_BATCH

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Per table, the moment before which rows are deleted."""
        return {table: now - timedelta(days=d) for table, d in self.days.items()}


def retention_config(settings: Settings) -> RetentionConfig:
    """Parse ``[retention]``; a ConfigError names the file and the key."""
    section = settings.section("retention")
    label = settings.config_label
    known = {f"{t}_days" for t in PRUNABLE} | {"batch_size"}
    check_keys(section, "retention", label, known=known)
    days: dict[str, int] = {}
    for table in PRUNABLE:
        key = f"{table}_days"
        value = opt(section, key, int, label, "retention", default=DEFAULT_DAYS[table])
        if value < 1:
            raise ConfigError(f"{label}: [retention] {key}: expected a whole number of days >= 1, got {value}")
        days[table] = value
    batch = opt(section, "batch_size", int, label, "retention", default=DEFAULT_BATCH)
    if batch < 1:
        raise ConfigError(f"{label}: [retention] batch_size: expected a whole number >= 1, got {batch}")
    return RetentionConfig(days=days, batch_size=batch)


def run(settings: Settings, engine: Engine, *, now: datetime) -> dict[str, int]:
    """Delete rows older than each table's retention; returns ``{table: rows deleted}``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    config = retention_config(settings)
    with engine.begin() as conn:
        created = ensure_months(conn, now)
    if created:
        log.info("partitions created", extra={"partitions": created})
    deleted: dict[str, int] = {}
    for table, cutoff in config.cutoffs(now).items():
        total = batches = 0
        if table in PARTITIONED:
            # PostgreSQL: whole expired months go as partitions; the rest by row below
            with engine.begin() as conn:
                dropped = drop_expired(conn, table, cutoff)
            total += sum(dropped.values())
            if dropped:
                log.info("partitions dropped", extra={"table": table, "partitions": dropped, "cutoff": cutoff.isoformat()})
        while True:
            with engine.begin() as conn:
                n = delete_batch(conn, table, cutoff, limit=config.batch_size)
            total += n
            batches += 1 if n else 0
            log.debug("retention batch", extra={"table": table, "deleted": n, "cutoff": cutoff.isoformat()})
            if n < config.batch_size:
                break
        deleted[table] = total
        log.info(
            "retention applied",
            extra={
                "table": table,
                "deleted": total,
                "batches": batches,
                "keep_days": config.days[table],
                "cutoff": cutoff.isoformat(),
            },
        )
    return deleted


def plan(settings: Settings, engine: Engine, *, now: datetime) -> dict[str, int]:
    """What ``run`` would delete now, without deleting: ``{table: rows}``."""
    config = retention_config(settings)
    with engine.connect() as conn:
        return {table: count_older(conn, table, cutoff) for table, cutoff in config.cutoffs(now).items()}
