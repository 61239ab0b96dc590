"""metric_points' partitions at fillfactor 90 (store.partitions.FILLFACTOR; SQLite: nothing)

Revision ID: 0011_h22i
Revises: 0010_h22z
Create Date: 2026-12-06 23:30:00

Sets the storage parameter on every partition that exists (month partitions and the default);
partitions made later get it when created (store.partitions.create_month). It applies to pages
written from now on: pages already filled stay full until their rows are rewritten (VACUUM FULL
or CLUSTER of a partition would repack it; not done here, it locks the table).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_h22i'
down_revision = '0010_h22z'
branch_labels = None
depends_on = None

FILLFACTOR = {"metric_points": 90}  # (store.partitions.FILLFACTOR when written)


def _partitions(conn, table: str) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE p.relname = :t AND n.nspname = current_schema() ORDER BY c.relname"
            ),
            {"t": table},
        ).scalars()
    )


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, fillfactor in FILLFACTOR.items():
        for name in _partitions(conn, table):
            conn.execute(sa.text(f'ALTER TABLE "{name}" SET (fillfactor = {int(fillfactor)})'))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in FILLFACTOR:
        for name in _partitions(conn, table):
            conn.execute(sa.text(f'ALTER TABLE "{name}" RESET (fillfactor)'))
