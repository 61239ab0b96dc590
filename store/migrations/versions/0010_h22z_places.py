"""places: the (account, region) pairs runs and cost rows came from, per day, for the dashboard's
account and region lists (store/places.py), filled from the rows already stored

Revision ID: 0010_h22z
Revises: 0009_h22i
Create Date: 2026-12-06 21:00:00

The fill reads every run and cost row once (1M runs and 21.9M cost rows: seconds on PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_h22z'
down_revision = '0009_h22i'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'places',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('region', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('day', 'kind', 'account', 'region', name=op.f('pk_places')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        run_day = "(started_at AT TIME ZONE 'UTC')::date"
    else:  # naive UTC text
        run_day = 'date(started_at)'
    op.execute(
        f"INSERT INTO places (day, kind, account, region) SELECT DISTINCT {run_day}, 'runs', account, region "
        "FROM runs WHERE started_at IS NOT NULL"
    )
    op.execute("INSERT INTO places (day, kind, account, region) SELECT DISTINCT day, 'cost', account, region FROM cost_daily")


def downgrade() -> None:
    op.drop_table('places')
