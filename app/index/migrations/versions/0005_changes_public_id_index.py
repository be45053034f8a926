"""changes and exports: sequence numbers never reused; changes indexed by resource

* Orthanc's ``Changes`` rows reference their resource ``ON DELETE CASCADE``: deleting a
  resource (or overwriting an instance, which deletes it first) removes its entries from
  ``/changes``. Pharos deletes them by public ID, which the new index serves.
* Orthanc numbers changes and exports with ``AUTOINCREMENT``: a ``Seq`` is never given
  twice, even after ``DELETE /changes`` or the deletion of the last entries, so that a
  client polling ``/changes?since=N`` never misses an entry. SQLite's plain ``INTEGER
  PRIMARY KEY`` reuses the largest freed number: both tables are rebuilt with
  ``AUTOINCREMENT`` (PostgreSQL's sequences never go back).

Revision ID: 0005_changes_public_id
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op


revision = '0005_changes_public_id'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("changes", "exports"):
        if sqlite:
            with op.batch_alter_table(table, recreate="always",
                                      table_kwargs={"sqlite_autoincrement": True}):
                pass
    op.create_index(op.f('ix_changes_public_id'), 'changes', ['public_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_changes_public_id'), table_name='changes')
