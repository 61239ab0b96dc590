"""forecast snapshots keep the chosen model and its backtest error beside the simple forecasts'

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('forecast_snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('backtest_mae', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('mae_last_value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('mae_seasonal_naive', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('forecast_snapshots', schema=None) as batch_op:
        batch_op.drop_column('mae_seasonal_naive')
        batch_op.drop_column('mae_last_value')
        batch_op.drop_column('backtest_mae')
        batch_op.drop_column('model')
