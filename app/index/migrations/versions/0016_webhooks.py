"""webhook_deliveries, webhook_endpoints: durable webhook delivery

See ``app.index.models.WebhookDelivery`` and ``app.services.webhooks``.

Revision ID: 0016_webhooks
Revises: 0015_metric_counters
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_webhooks'
down_revision = '0015_metric_counters'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_deliveries',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('webhook', sa.String(length=64), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('event', sa.Text(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('created', sa.Float(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_webhook_deliveries')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_webhook_deliveries_webhook_seq', 'webhook_deliveries',
                    ['webhook', 'seq'], unique=False)
    op.create_table(
        'webhook_endpoints',
        sa.Column('webhook', sa.String(length=64), nullable=False),
        sa.Column('next_attempt', sa.Float(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('lease_owner', sa.Text(), nullable=True),
        sa.Column('lease_until', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('webhook', name=op.f('pk_webhook_endpoints')),
    )


def downgrade() -> None:
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_webhook_deliveries_webhook_seq', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
