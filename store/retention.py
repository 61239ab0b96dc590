"""SQL for retention: delete raw rows older than a cutoff, one bounded batch at a time.

Each table that retention may prune has one *age* expression (when the row happened) in
``AGE``. ``delete_batch`` deletes at most ``limit`` rows whose age is before the cutoff, chosen
by primary key in a subquery (``DELETE ... WHERE (pk) IN (SELECT pk ... LIMIT n)``), which
both SQLite (row values, 3.15+) and PostgreSQL run; callers loop, one transaction per batch,
so a large purge never holds a long write lock. The daily rollups (``run_daily``,
``cost_daily``) are deliberately absent: the dashboard reads them after the raw rows are gone.

Adding a table: give it an entry in ``AGE`` (prefer an indexed column) and a default in
``jobs.retention.DEFAULT_DAYS``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import collector_runs, metric_points, notifications, run_logs, run_steps

__all__ = ["AGE", "PRUNABLE", "count_older", "delete_batch"]

# When a row "happened". run_steps: a step that never started (queued, then cancelled) is aged
# by when it was queued, or failing that by when it was last written.
AGE: dict[str, tuple[sa.Table, sa.ColumnElement]] = {
    "metric_points": (metric_points, metric_points.c.ts),
    "run_logs": (run_logs, run_logs.c.ts),
    "run_steps": (
        run_steps,
        sa.func.coalesce(run_steps.c.started_at, run_steps.c.queued_at, run_steps.c.updated_at),
    ),
    "collector_runs": (collector_runs, collector_runs.c.started_at),
    "notifications": (notifications, notifications.c.created_at),
}
PRUNABLE = tuple(AGE)


def _older(name: str, cutoff: datetime) -> tuple[sa.Table, sa.ColumnElement[bool]]:
    try:
        table, age = AGE[name]
    except KeyError:
        raise ValueError(f"retention does not prune {name!r}; prunable tables: {', '.join(PRUNABLE)}") from None
    # The cutoff is bound with the table's own column type, so SQLite gets its naive UTC form.
    bound = sa.bindparam("cutoff", cutoff, type_=table.c[_time_column(table)].type)
    return table, age < bound


def _time_column(table: sa.Table) -> str:
    for name in ("ts", "started_at", "created_at"):
        if name in table.c:
            return name
    raise AssertionError(f"{table.name} has no time column")  # pragma: no cover


def delete_batch(conn: Connection, name: str, cutoff: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` rows of table ``name`` older than ``cutoff``; returns rows deleted."""
    table, older = _older(name, cutoff)
    pk = list(table.primary_key.columns)
    chosen = sa.select(*pk).where(older).limit(limit)
    if len(pk) == 1:
        cond = pk[0].in_(chosen.scalar_subquery())
    else:
        cond = sa.tuple_(*pk).in_(chosen)
    result = conn.execute(sa.delete(table).where(cond))
    return int(result.rowcount or 0)


def count_older(conn: Connection, name: str, cutoff: datetime) -> int:
    """How many rows of table ``name`` are older than ``cutoff`` (what a purge would delete)."""
    table, older = _older(name, cutoff)
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(older)).scalar_one())
