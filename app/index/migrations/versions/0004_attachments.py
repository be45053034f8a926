"""user attachments (content types 1024..65535) of any resource

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_PARENTS = (('patient_pk', 'patients'), ('study_pk', 'studies'), ('series_pk', 'series'),
            ('instance_pk', 'instances'))


def upgrade() -> None:
    op.create_table(
        'attachments',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=8), nullable=False),
        sa.Column('resource_pk', sa.Integer(), nullable=False),
        *[sa.Column(column, sa.Integer(), nullable=True) for column, _ in _PARENTS],
        sa.Column('content_type', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.Text(), nullable=False),
        sa.Column('compression', sa.Integer(), nullable=False),
        sa.Column('uncompressed_size', sa.BigInteger(), nullable=False),
        sa.Column('uncompressed_md5', sa.Text(), nullable=False),
        sa.Column('compressed_size', sa.BigInteger(), nullable=False),
        sa.Column('compressed_md5', sa.Text(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        *[sa.ForeignKeyConstraint([column], [f'{table}.pk'],
                                  name=op.f(f'fk_attachments_{column}_{table}'),
                                  ondelete='CASCADE') for column, table in _PARENTS],
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_attachments')),
        sa.UniqueConstraint('level', 'resource_pk', 'content_type',
                            name='uq_attachments_resource_type'),
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        for column, _ in _PARENTS:
            batch_op.create_index(batch_op.f(f'ix_attachments_{column}'), [column], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_uuid'), ['uuid'], unique=False)


def downgrade() -> None:
    op.drop_table('attachments')
