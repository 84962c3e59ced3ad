"""Deployments (a pipeline served as an endpoint or on a schedule) and their executions.

Revision ID: s0005_deployments
Revises: s0004_forge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0005_deployments"
down_revision = "s0004_forge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_deployments",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("follow", sa.Boolean, nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("token_digest", sa.String(64)),
        sa.Column("next_at", sa.Float),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_deployments_next", "srv_deployments", ["next_at"])
    op.create_table(
        "srv_deployment_executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON),
        sa.Column("logs", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
    )
    op.create_index(
        "ix_srv_deployment_executions_of",
        "srv_deployment_executions",
        ["project", "deployment", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("srv_deployment_executions")
    op.drop_table("srv_deployments")
