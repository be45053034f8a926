"""storage commitment reports (``/storage-commitment/{transaction}``)

A report is created Pending when Pharos asks a modality for storage commitment
(N-ACTION), and completed when the modality's N-EVENT-REPORT comes back, possibly to
another HTTP process than the one that asked: the reports live in the index.

Revision ID: 0011_storage_commitment
Revises: 0010_query_options
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_storage_commitment'
down_revision = '0010_query_options'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('storage_commitment_reports',
    sa.Column('transaction_uid', sa.String(length=64), nullable=False),
    sa.Column('remote_aet', sa.Text(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('success', sa.LargeBinary(), nullable=False),
    sa.Column('failures', sa.LargeBinary(), nullable=False),
    sa.Column('created', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('transaction_uid', name=op.f('pk_storage_commitment_reports'))
    )


def downgrade() -> None:
    op.drop_table('storage_commitment_reports')
