"""metric_counters: the archive's Prometheus counters, summed over the server processes

See ``app.index.models.MetricCounter`` and ``app.context.metrics``.

Revision ID: 0015_metric_counters
Revises: 0014_instance_compression
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_metric_counters'
down_revision = '0014_instance_compression'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'metric_counters',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('labels', sa.Text(), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'labels', name=op.f('pk_metric_counters')),
    )


def downgrade() -> None:
    op.drop_table('metric_counters')
