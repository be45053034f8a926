"""jobs: the "UserData" a client attached to a job (Orthanc 1.12.9)

Any JSON value given as ``UserData`` in the payload of a route that creates a job travels
with the job and is shown in ``/jobs/{id}``; NULL when none was given.

Revision ID: 0013_job_user_data
Revises: 0012_find_ordering_indexes
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_job_user_data'
down_revision = '0012_find_ordering_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_data', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('user_data')
