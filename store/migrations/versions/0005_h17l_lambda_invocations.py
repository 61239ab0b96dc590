"""lambda_invocations: the figures of each Lambda REPORT line (duration, billed duration, memory)

Revision ID: 0005_h17l
Revises: 0004_h22c
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_h17l'
down_revision = '0004_h22c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lambda_invocations',
        sa.Column('log_group', sa.String(length=512), nullable=False),
        sa.Column('request_id', sa.String(length=100), nullable=False),
        sa.Column('function_name', sa.String(length=200), nullable=False),
        sa.Column('pipeline', sa.String(length=200), server_default='', nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.Column('billed_duration_ms', sa.Float(), nullable=False),
        sa.Column('memory_size_mb', sa.Integer(), nullable=False),
        sa.Column('max_memory_used_mb', sa.Integer(), nullable=False),
        sa.Column('init_duration_ms', sa.Float(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=True),
        sa.Column('log_stream', sa.String(length=512), server_default='', nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('log_group', 'request_id', name=op.f('pk_lambda_invocations')),
    )
    op.create_index('ix_lambda_invocations_function_name_ended_at', 'lambda_invocations', ['function_name', 'ended_at'],
                    unique=False)
    op.create_index('ix_lambda_invocations_pipeline_ended_at', 'lambda_invocations', ['pipeline', 'ended_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_lambda_invocations_pipeline_ended_at', table_name='lambda_invocations')
    op.drop_index('ix_lambda_invocations_function_name_ended_at', table_name='lambda_invocations')
    op.drop_table('lambda_invocations')
