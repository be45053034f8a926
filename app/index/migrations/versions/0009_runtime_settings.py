"""runtime settings: Orthanc's settings changeable through the REST API

``/tools/default-encoding``, ``/tools/accepted-transfer-syntaxes``,
``/tools/unknown-sop-class-accepted``, ``/tools/log-level*`` and ``/tools/metrics``
change the running server; every HTTP process and the DICOM SCP must see the change, so
the values live in the index database (written from the configuration at each start,
as Orthanc forgets them when it restarts).

Revision ID: 0009_runtime_settings
Revises: 0008_dicomweb_servers
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_runtime_settings'
down_revision = '0008_dicomweb_servers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runtime_settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_runtime_settings'))
    )


def downgrade() -> None:
    op.drop_table('runtime_settings')
