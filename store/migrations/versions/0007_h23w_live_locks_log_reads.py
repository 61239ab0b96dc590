"""live locks (host, pid, heartbeat), the schedule slot of a pass, what the logs collector has read

Revision ID: 0007_h23w
Revises: 0006_h20a
Create Date: 2026-12-06 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_h23w'
down_revision = '0006_h20a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('locks') as batch:
        batch.add_column(sa.Column('host', sa.String(length=255), nullable=False, server_default=''))
        batch.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('collector_runs') as batch:
        batch.add_column(sa.Column('slot', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_collector_runs_source_slot', ['source', 'slot'])
    op.create_table(
        'log_reads',
        sa.Column('run_id', sa.String(length=600), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('complete', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('run_id', name=op.f('pk_log_reads')),
    )


def downgrade() -> None:
    op.drop_table('log_reads')
    with op.batch_alter_table('collector_runs') as batch:
        batch.drop_index('ix_collector_runs_source_slot')
        batch.drop_column('slot')
    with op.batch_alter_table('locks') as batch:
        batch.drop_column('heartbeat_at')
        batch.drop_column('pid')
        batch.drop_column('host')
