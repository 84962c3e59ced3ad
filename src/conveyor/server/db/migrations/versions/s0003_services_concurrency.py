"""A queued run's pipeline and its concurrency limit (Drone's ``concurrency: {limit}``):
a run waits in the queue while ``limit`` runs of its pipeline are running.

Revision ID: s0003_services
Revises: s0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0003_services"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("srv_runs") as batch:
        batch.add_column(sa.Column("pipeline", sa.String(200)))
        batch.add_column(sa.Column("concurrency", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("srv_runs") as batch:
        batch.drop_column("concurrency")
        batch.drop_column("pipeline")
