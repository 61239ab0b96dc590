"""metric_points and cost_daily: monthly RANGE partitions on PostgreSQL (SQLite: nothing)

Revision ID: 0009_h22i
Revises: 0008_h17acct
Create Date: 2026-12-06 03:00:00

Each table is rebuilt, whatever columns it has by then (other migrations may add some): the old
table and its indexes are renamed aside, a partitioned table ``LIKE`` it is created with the
same defaults, checks, primary key, unique constraints, indexes and grants, a default partition
and one partition per month that holds rows (and the current month and the next three), the
rows copied, the old table dropped. The primary keys already hold the partition column.
Downgrade rebuilds plain tables the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from store.partitions import is_partitioned  # the same check the retention job makes

revision = '0009_h22i'
down_revision = '0008_h17acct'
branch_labels = None
depends_on = None

TABLES = {"metric_points": "ts", "cost_daily": "day"}
ASIDE = "_pre0007"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, col in TABLES.items():
        if is_partitioned(conn, table):
            continue
        _rebuild(conn, table, partition_by=col)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in TABLES:
        if is_partitioned(conn, table):
            _rebuild(conn, table, partition_by=None)


def _rebuild(conn, table: str, *, partition_by: str | None) -> None:
    from store.partitions import create_month  # the same code the retention job runs

    q = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
    old = table + ASIDE
    # what to recreate: constraints backed by an index (primary key, unique), other indexes, grants
    constraints = conn.execute(
        sa.text(
            "SELECT con.conname, con.contype, pg_get_constraintdef(con.oid) FROM pg_constraint con "
            "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :t AND n.nspname = current_schema() AND con.contype IN ('p', 'u') ORDER BY con.contype"
        ),
        {"t": table},
    ).all()
    backing = {name for name, _, _ in constraints}
    indexes = [
        (name, definition)
        for name, definition in conn.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND schemaname = current_schema()"),
            {"t": table},
        ).all()
        if name not in backing
    ]
    grants = conn.execute(
        sa.text(
            "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_name = :t AND table_schema = current_schema() AND grantee <> current_user"
        ),
        {"t": table},
    ).all()
    conn.execute(sa.text(f"ALTER TABLE {q(table)} RENAME TO {q(old)}"))
    for name, _, _ in constraints:
        conn.execute(sa.text(f"ALTER TABLE {q(old)} RENAME CONSTRAINT {q(name)} TO {q(name + ASIDE)}"))
    for name, _ in indexes:
        conn.execute(sa.text(f"ALTER INDEX {q(name)} RENAME TO {q(name + ASIDE)}"))
    tail = f" PARTITION BY RANGE ({q(partition_by)})" if partition_by else ""
    conn.execute(
        sa.text(f"CREATE TABLE {q(table)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){tail}")
    )
    for name, _, definition in constraints:
        conn.execute(sa.text(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}"))
    for _, definition in indexes:
        # pg_indexes names the table, which is the new one by now
        conn.execute(sa.text(definition))
    for grantee, privilege in grants:
        conn.execute(sa.text(f"GRANT {privilege} ON {q(table)} TO {q(grantee)}"))
    if partition_by:
        conn.execute(sa.text(f"CREATE TABLE {q(table + '_default')} PARTITION OF {q(table)} DEFAULT"))
        months = conn.execute(
            sa.text(
                f"SELECT DISTINCT date_trunc('month', {q(partition_by)}"
                f"{' AT TIME ZONE ' + chr(39) + 'UTC' + chr(39) if partition_by == 'ts' else ''})::date FROM {q(old)}"
            )
        ).scalars()
        now = datetime.now(UTC).date()
        wanted = set(months)
        month = now.replace(day=1)
        for _ in range(4):
            wanted.add(month)
            month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
        for m in sorted(wanted):
            create_month(conn, table, m)
    columns = ", ".join(
        q(c)
        for c in conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                "AND table_schema = current_schema() ORDER BY ordinal_position"
            ),
            {"t": old},
        ).scalars()
    )
    conn.execute(sa.text(f"INSERT INTO {q(table)} ({columns}) SELECT {columns} FROM {q(old)}"))
    conn.execute(sa.text(f"DROP TABLE {q(old)}"))
