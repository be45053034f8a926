"""queries: the options of a query (normalize, local AET, timeout, the remote's parameters)

``/queries/{id}/answers/{n}/query-studies|series|instances`` query the same modality
again with the same options, and ``/queries/{id}/retrieve`` moves through the remote
as it was when queried (Orthanc's ``QueryRetrieveHandler`` keeps them).

Revision ID: 0010_query_options
Revises: 0009_runtime_settings
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_query_options'
down_revision = '0009_runtime_settings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('queries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('options', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('queries', schema=None) as batch_op:
        batch_op.drop_column('options')
