"""run_logs, metric_series, lambda_invocations: the AWS account and region each row was read from

Revision ID: 0008_h17acct
Revises: 0007_h23w
Create Date: 2026-12-06 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_h17acct'
down_revision = '0007_h23w'
branch_labels = None
depends_on = None

TABLES = ('run_logs', 'metric_series', 'lambda_invocations')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('account', sa.String(length=64), nullable=False, server_default=''))
            batch.add_column(sa.Column('region', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('region')
            batch.drop_column('account')
