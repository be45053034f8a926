"""an index on upper(patient_id) for case-insensitive PatientID look-ups

Orthanc keeps identifiers upper-cased and looks them up so: ``/tools/lookup`` finds
``ozp00SjY2xG`` from ``OZP00SJY2XG``, and ``/tools/find`` with ``CaseSensitive: false``
matches PatientID ignoring case. Pharos keeps PatientID as received and compares its
case variants through the plain index when the value has few letters, or
``upper(patient_id)`` beyond: this expression index serves the latter (SQLite and
PostgreSQL both index expressions).

Revision ID: 0007_patient_id_upper
Revises: 0006_blob_deletions
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_patient_id_upper'
down_revision = '0006_blob_deletions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_patients_patient_id_upper', 'patients', [sa.text('upper(patient_id)')],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_patients_patient_id_upper', table_name='patients')
