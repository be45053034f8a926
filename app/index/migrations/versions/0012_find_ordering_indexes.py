"""indexes for Orthanc 1.12.5's extended find (OrderBy + Limit) and changes (?type=)

``OrderBy`` + ``Limit`` answers in a few index entries when its first key has an index
whose order is the one asked, the pk included (every ``OrderBy`` ends with the pk, see
app/index/find.py); otherwise every matching row is read and sorted. Found with
``benchmarks/find.py --explain`` at 100,000 instances:

* ``InstanceNumber`` as an integer (``DicomTagAsInt``, the viewers' order) over the
  instances, the biggest table: an index on the expression the query compiler writes.
  SQLite: ``CAST(instance_number AS INTEGER)``, each entry carrying the rowid (the pk);
  PostgreSQL casts only what is a number (``CASE WHEN ... ~ '^...$'``, else NULL). One
  index per direction, each with the pk ascending and missing values (NULLs) last, as
  the query asks: equal numbers (one per series) are many, sorting them would cost.
* ``LastUpdate`` of studies (Orthanc Explorer 2's default order: the most recently
  updated studies first, paged by ``Since``).
* ``/changes?type=``: ``(change_type, seq)``, so that a rare type (StableStudy among
  millions of NewInstance) is found without walking the whole log.

The other keys Orthanc Explorer 2 sorts studies by (StudyDate, PatientName, PatientID,
AccessionNumber, PatientBirthDate) already have indexes (0001, 0003).

Revision ID: 0012_find_ordering_indexes
Revises: 0011_storage_commitment
Create Date: 2026-12-01
"""
from alembic import op


revision = '0012_find_ordering_indexes'
down_revision = '0011_storage_commitment'
branch_labels = None
depends_on = None

# The integer value of InstanceNumber as app.index.find._cast writes it on PostgreSQL.
PG_INSTANCE_NUMBER = ("(CASE WHEN (instance_number ~ '^\\s*[-+]?[0-9]+\\s*$') "
                      "THEN CAST(btrim(instance_number) AS BIGINT) ELSE NULL END)")


def upgrade() -> None:
    op.create_index('ix_studies_last_update', 'studies', ['last_update', 'pk'])
    op.create_index('ix_changes_change_type', 'changes', ['change_type', 'seq'])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_instances_instance_number_int ON instances "
                   f"({PG_INSTANCE_NUMBER} ASC NULLS LAST, pk)")
        op.execute(f"CREATE INDEX ix_instances_instance_number_int_desc ON instances "
                   f"({PG_INSTANCE_NUMBER} DESC NULLS LAST, pk)")
    else:
        op.execute("CREATE INDEX ix_instances_instance_number_int ON instances "
                   "(CAST(instance_number AS INTEGER))")
        op.execute("CREATE INDEX ix_instances_instance_number_int_desc ON instances "
                   "(CAST(instance_number AS INTEGER) DESC)")


def downgrade() -> None:
    op.drop_index('ix_instances_instance_number_int_desc', table_name='instances')
    op.drop_index('ix_instances_instance_number_int', table_name='instances')
    op.drop_index('ix_changes_change_type', table_name='changes')
    op.drop_index('ix_studies_last_update', table_name='studies')
