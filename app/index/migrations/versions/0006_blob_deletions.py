"""blob_deletions: the durable list of blobs to delete (retried until the store agrees)

See ``app.index.models.BlobDeletion`` and ``app.context.blob_deletion``.

Revision ID: 0006_blob_deletions
Revises: 0005_changes_public_id
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_blob_deletions'
down_revision = '0005_changes_public_id'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blob_deletions',
        sa.Column('blob_key', sa.Text(), nullable=False),
        sa.Column('due', sa.Float(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('blob_key', name=op.f('pk_blob_deletions')),
    )
    with op.batch_alter_table('blob_deletions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blob_deletions_due'), ['due'], unique=False)


def downgrade() -> None:
    op.drop_table('blob_deletions')
