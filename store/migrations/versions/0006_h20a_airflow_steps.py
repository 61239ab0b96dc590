"""run_steps: the operator and map index of an Airflow task try

Revision ID: 0006_h20a
Revises: 0005_h17l
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_h20a'
down_revision = '0005_h17l'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('run_steps') as batch:
        batch.add_column(sa.Column('operator', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('map_index', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run_steps') as batch:
        batch.drop_column('map_index')
        batch.drop_column('operator')
