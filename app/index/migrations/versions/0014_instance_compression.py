"""instances: how the DICOM file is stored (Orthanc's ``StorageCompression``)

``compression`` is Orthanc's CompressionType of the blob (0 as received, 1 zlib with a
size prefix); ``compressed_size`` and ``compressed_md5`` describe the blob as stored when
it is compressed, and are NULL when it is not (then the blob is the file: ``file_size``
and ``md5``). Existing rows are files stored as received: nothing to rewrite.

Revision ID: 0014_instance_compression
Revises: 0013_job_user_data
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_instance_compression'
down_revision = '0013_job_user_data'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compression', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('compressed_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('compressed_md5', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('compressed_md5')
        batch_op.drop_column('compressed_size')
        batch_op.drop_column('compression')
