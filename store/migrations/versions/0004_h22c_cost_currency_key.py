"""cost_daily: currency joins the primary key (a month billed in two currencies is two rows a key)

Revision ID: 0004_h22c
Revises: 0003_i19
Create Date: 2026-12-05 17:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0004_h22c'
down_revision = '0003_i19'
branch_labels = None
depends_on = None

KEY = ['source', 'day', 'provider', 'account', 'service', 'region', 'usage_type', 'pipeline']


def upgrade() -> None:
    # batch mode: ALTER on PostgreSQL, a copy of the table on SQLite (which cannot alter a key)
    with op.batch_alter_table('cost_daily', recreate='auto') as batch_op:
        batch_op.drop_constraint('pk_cost_daily', type_='primary')
        batch_op.create_primary_key('pk_cost_daily', [*KEY, 'currency'])


def downgrade() -> None:
    # rows that differ only in currency cannot share the old key: refuse rather than drop money
    bind = op.get_bind()
    cols = ', '.join(KEY)
    clash = bind.exec_driver_sql(f'SELECT COUNT(*) FROM (SELECT {cols} FROM cost_daily GROUP BY {cols} HAVING COUNT(*) > 1) AS t').scalar()
    if clash:
        raise RuntimeError(f'cost_daily holds {clash} key(s) in more than one currency; delete those rows before downgrading below 0004')
    with op.batch_alter_table('cost_daily', recreate='auto') as batch_op:
        batch_op.drop_constraint('pk_cost_daily', type_='primary')
        batch_op.create_primary_key('pk_cost_daily', KEY)
