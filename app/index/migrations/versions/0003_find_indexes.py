"""indexes for /tools/find, QIDO-RS and C-FIND at scale

Found with ``benchmarks/find.py --explain`` (EXPLAIN QUERY PLAN on SQLite, EXPLAIN
ANALYZE on PostgreSQL) at 100,000 instances:

* both: ``series (study_pk, modality)`` makes ModalitiesInStudy (computed tag and
  matching key, an EXISTS per study) an index-only lookup instead of a fetch of every
  series row with its main tags.
* PostgreSQL: its B-tree indexes on text follow the database collation (C.UTF-8,
  en_US...), which cannot serve ``LIKE 'ABC%'``; ``text_pattern_ops`` indexes can, for
  the columns wildcards are used on (PatientID, PatientName, AccessionNumber,
  StudyDescription, ReferringPhysicianName, SeriesDescription). SQLite's GLOB prefixes
  already use the plain indexes of 0001.
* PostgreSQL: ``pg_trgm`` GIN indexes serve infix wildcards (``*JOHN*``) on the names
  and descriptions (not on identifiers, where infix searches are rare).
  ``CREATE EXTENSION pg_trgm`` needs a role allowed to create it (trusted since
  PostgreSQL 13: the database owner is enough): when it is refused, the trigram indexes
  are skipped with a warning and infix wildcards scan, as on SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
import logging

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# (index name, table, column): wildcard-matched columns of app.index.find.COLUMNS.
PATTERN_COLUMNS = [
    ("ix_patients_patient_id_pattern", "patients", "patient_id"),
    ("ix_patients_patient_name_norm_pattern", "patients", "patient_name_norm"),
    ("ix_studies_accession_pattern", "studies", "accession"),
    ("ix_studies_description_norm_pattern", "studies", "description_norm"),
    ("ix_studies_referring_norm_pattern", "studies", "referring_norm"),
    ("ix_series_description_norm_pattern", "series", "description_norm"),
]
TRIGRAM_COLUMNS = [
    ("ix_patients_patient_name_norm_trgm", "patients", "patient_name_norm"),
    ("ix_studies_description_norm_trgm", "studies", "description_norm"),
    ("ix_studies_referring_norm_trgm", "studies", "referring_norm"),
    ("ix_series_description_norm_trgm", "series", "description_norm"),
]


def upgrade() -> None:
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.create_index('ix_series_study_modality', ['study_pk', 'modality'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name, table, column in PATTERN_COLUMNS:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} text_pattern_ops)')
    if not _trigrams_available(bind):
        statements = "; ".join(f"CREATE INDEX {name} ON {table} USING gin ({column} "
                               "gin_trgm_ops)" for name, table, column in TRIGRAM_COLUMNS)
        log.warning("pg_trgm is not available to this role: infix wildcards (*ABC*) will "
                    "scan. To index them later, as a role allowed to: CREATE EXTENSION "
                    "pg_trgm; %s", statements)
        return
    for name, table, column in TRIGRAM_COLUMNS:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON {table} '
                   f'USING gin ({column} gin_trgm_ops)')


def _trigrams_available(bind) -> bool:  # noqa: ANN001
    """CREATE EXTENSION pg_trgm in a savepoint: a refusal must not abort the migration."""
    installed = bind.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first()
    if installed is not None:
        return True
    available = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").first()
    if available is None:
        return False
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as error:
        log.warning("CREATE EXTENSION pg_trgm failed: %s", error.orig)
        return False
    return True


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name, _table, _column in TRIGRAM_COLUMNS + PATTERN_COLUMNS:
            op.execute(f'DROP INDEX IF EXISTS {name}')
        # pg_trgm stays: other schemas of the database may use it.
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.drop_index('ix_series_study_modality')
