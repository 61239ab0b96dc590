"""Monthly partitions of the big time-keyed tables on PostgreSQL (SQLite keeps plain tables).

``metric_points`` (by ``ts``) and ``cost_daily`` (by ``day``) are declaratively partitioned
``BY RANGE`` on PostgreSQL (migration ``0009_h22i``): one partition per calendar month (UTC),
named ``<table>_pYYYYMM``, and a ``<table>_default`` partition that takes any row no month
partition covers, so no write is ever refused. The primary keys already hold the partition
column, as PostgreSQL requires of a partitioned table's unique constraints.

- ``ensure_months`` creates the partitions of the current month and the next ones (the retention
  job calls it every day; ``pipepulse db upgrade`` too). A month created after rows for it went to
  the default partition takes those rows with it.
- Every partition of ``metric_points`` (months and default) is made with ``fillfactor`` 90
  (``FILLFACTOR``; migration ``0011_h22i`` sets it on partitions made before): the 10% left free
  on each page lets an update of a stored point's value write its new version on the same page
  without new index entries (a HOT update). PostgreSQL keeps no storage parameter on a
  partitioned parent, so each partition is given it when created.
- ``drop_expired`` drops every month partition that ends at or before a cutoff: retention of
  whole months costs a catalog change, not a delete of millions of rows. Rows of the partly
  expired month (and old rows in the default partition) are still deleted by row
  (``store.retention.delete_batch``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = [
    "FILLFACTOR",
    "MONTHS_AHEAD",
    "PARTITIONED",
    "MonthPartition",
    "drop_expired",
    "ensure_months",
    "month_partitions",
    "partition_of",
    "storage_clause",
]

# table -> the column it is partitioned by
PARTITIONED: dict[str, str] = {"metric_points": "ts", "cost_daily": "day"}
MONTHS_AHEAD = 3  # besides the current month
# table -> fillfactor of each of its partitions (tables not named: PostgreSQL's default, 100)
FILLFACTOR: dict[str, int] = {"metric_points": 90}


@dataclass(frozen=True)
class MonthPartition:
    table: str
    name: str
    start: date  # first day of the month
    end: date  # first day of the next month


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def _next(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def _bound(table: str, d: date) -> str:
    """A partition bound literal: a UTC midnight for a timestamptz column, a date for a date one."""
    if PARTITIONED[table] == "ts":
        return f"'{d.isoformat()} 00:00:00+00'"
    return f"'{d.isoformat()}'"


def storage_clause(table: str) -> str:
    """The ``WITH (...)`` clause a new partition of ``table`` is created with ('' for none)."""
    return f" WITH (fillfactor = {FILLFACTOR[table]})" if table in FILLFACTOR else ""


def _check(conn: Connection, table: str) -> None:
    if table not in PARTITIONED:
        raise ValueError(f"{table!r} is not partitioned; partitioned tables: {', '.join(PARTITIONED)}")
    if conn.dialect.name != "postgresql":
        raise ValueError("partitions exist on PostgreSQL only")


def month_partitions(conn: Connection, table: str) -> list[MonthPartition]:
    """The month partitions of ``table``, oldest first (the default partition is not listed)."""
    _check(conn, table)
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE p.relname = :t AND n.nspname = current_schema()"
        ),
        {"t": table},
    ).scalars()
    out = []
    pattern = re.compile(rf"{re.escape(table)}_p(\d{{4}})(\d{{2}})")
    for name in names:
        if m := pattern.fullmatch(name):
            start = date(int(m[1]), int(m[2]), 1)
            out.append(MonthPartition(table, name, start, _next(start)))
    return sorted(out, key=lambda p: p.start)


def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(
        conn.execute(
            sa.text(
                "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = :t AND n.nspname = current_schema()"
            ),
            {"t": table},
        ).first()
    )


def create_month(conn: Connection, table: str, month: date) -> bool:
    """Create ``table``'s partition for ``month`` unless it exists; returns whether it was made.

    Rows for that month already in the default partition move into it (PostgreSQL refuses to
    attach a range the default partition holds rows of)."""
    _check(conn, table)
    start = _month(month)
    name = _name(table, start)
    if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
        return False
    col = PARTITIONED[table]
    lo, hi = _bound(table, start), _bound(table, _next(start))
    default = f"{table}_default"
    conn.execute(sa.text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS){storage_clause(table)}'))
    if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": default}).scalar() is not None:
        conn.execute(
            sa.text(
                f'WITH moved AS (DELETE FROM "{default}" WHERE "{col}" >= {lo} AND "{col}" < {hi} RETURNING *) '
                f'INSERT INTO "{name}" SELECT * FROM moved'
            )
        )
    conn.execute(sa.text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM ({lo}) TO ({hi})'))
    return True


def ensure_months(conn: Connection, now: datetime, *, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the partitions of ``now``'s month and the ``ahead`` next ones on every partitioned
    table; returns the names created. A no-op on SQLite or on a table that is not partitioned."""
    created: list[str] = []
    if conn.dialect.name != "postgresql":
        return created
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        month = _month(now.astimezone(UTC).date())
        for _ in range(ahead + 1):
            if create_month(conn, table, month):
                created.append(_name(table, month))
            month = _next(month)
    return created


def partition_of(conn: Connection, table: str, key_where: str, params: dict) -> list[str]:
    """Which partitions hold the rows of ``table`` matching ``key_where`` (for tests and checks)."""
    _check(conn, table)
    rows = conn.execute(
        sa.text(f'SELECT DISTINCT tableoid::regclass::text FROM "{table}" WHERE {key_where}'), params
    ).scalars()
    return sorted(str(r).strip('"') for r in rows)


def drop_expired(conn: Connection, table: str, cutoff: datetime) -> dict[str, int]:
    """Drop ``table``'s month partitions that end at or before ``cutoff``; returns
    ``{partition: rows it held}``. SQLite or an unpartitioned table: nothing, ``{}``."""
    if conn.dialect.name != "postgresql" or not is_partitioned(conn, table):
        return {}
    limit = cutoff.astimezone(UTC)
    dropped: dict[str, int] = {}
    for part in month_partitions(conn, table):
        if datetime(part.end.year, part.end.month, part.end.day, tzinfo=UTC) > limit:
            continue
        rows = int(conn.execute(sa.text(f'SELECT count(*) FROM "{part.name}"')).scalar_one())
        conn.execute(sa.text(f'ALTER TABLE "{table}" DETACH PARTITION "{part.name}"'))
        conn.execute(sa.text(f'DROP TABLE "{part.name}"'))
        dropped[part.name] = rows
    return dropped
