"""dicomweb_servers: remote DICOMweb servers registered through /dicom-web/servers

See ``app.index.models.StoredDicomWebServer`` and ``app.services.dicomweb_servers``.

Revision ID: 0008_dicomweb_servers
Revises: 0007_patient_id_upper
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_dicomweb_servers'
down_revision = '0007_patient_id_upper'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dicomweb_servers',
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('config', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_dicomweb_servers')),
    )


def downgrade() -> None:
    op.drop_table('dicomweb_servers')
