"""the change log follows Orthanc's: sequence numbers never reused, rows deleted with
their resource

* SQLite: ``changes`` becomes an ``AUTOINCREMENT`` table, so that a sequence number is
  never given twice even after ``DELETE /changes`` or the deletion of the newest
  resources (a plain INTEGER PRIMARY KEY reuses max(seq)+1), and ``sqlite_sequence``
  tells the last number given (Orthanc answers it as ``Last`` of an empty page).
  PostgreSQL's serial sequence already behaves so.
* ``ix_changes_public_id``: deleting a resource deletes its changes (Orthanc's
  ``Changes.internalId ... ON DELETE CASCADE``), looked up by public ID.
* ``ix_patients_patient_id_upper``: PatientID compared ignoring case (``/tools/lookup``,
  Orthanc's identifiers being upper-cased) uses ``upper(patient_id)``.

Revision ID: 0005_changes_follow_resources
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_changes_follow_resources'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('changes', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}) as batch_op:
            batch_op.create_index('ix_changes_public_id', ['public_id'], unique=False)
    else:
        op.create_index('ix_changes_public_id', 'changes', ['public_id'], unique=False)
    op.create_index('ix_patients_patient_id_upper', 'patients', [sa.text('upper(patient_id)')],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_patients_patient_id_upper', table_name='patients')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index('ix_changes_public_id')
