"""Pachyderm triggers: the dataset commits and pipeline changes whose jobs are owed.

Revision ID: s0006_pachjobs
Revises: s0005_deployments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0006_pachjobs"
down_revision = "s0005_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_pachyderm_triggers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("branch", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float),
    )
    op.create_index(
        "ix_srv_pachyderm_triggers_status",
        "srv_pachyderm_triggers",
        ["status", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("srv_pachyderm_triggers")
