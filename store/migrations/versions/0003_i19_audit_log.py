"""the dashboard's audit log: sign-ins (failed, locked, refused), sign-outs and admin actions

Revision ID: 0003_i19
Revises: 0002
Create Date: 2026-12-05 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_i19'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('audit_id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('actor', sa.String(length=200), server_default='', nullable=False),
        sa.Column('client', sa.String(length=64), server_default='', nullable=False),
        sa.Column('target', sa.String(length=600), server_default='', nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_audit_log')),
    )
    op.create_index('ix_audit_log_actor_at', 'audit_log', ['actor', 'at'], unique=False)
    op.create_index('ix_audit_log_client_at', 'audit_log', ['client', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_client_at', table_name='audit_log')
    op.drop_index('ix_audit_log_actor_at', table_name='audit_log')
    op.drop_table('audit_log')
