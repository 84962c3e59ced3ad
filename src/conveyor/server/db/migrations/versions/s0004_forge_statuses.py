"""Commit statuses owed to forges (an outbox that outlives a restart) and the last
webhook deliveries of each project (what a lead sees on the settings page).

Revision ID: s0004_forge
Revises: s0003_services
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0004_forge"
down_revision = "s0003_services"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_forge_statuses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("forge", sa.String(16), nullable=False),
        sa.Column("api", sa.String(300), nullable=False),
        sa.Column("repo", sa.String(300), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("web_url", sa.String(300)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("description", sa.String(140), nullable=False),
        sa.Column("target_url", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float),
        sa.Column("sent_at", sa.Float),
        sa.Column("outcome", sa.String(300)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_forge_statuses_next", "srv_forge_statuses", ["next_at"])
    op.create_index("ix_srv_forge_statuses_run", "srv_forge_statuses", ["run_id"])
    op.create_table(
        "srv_hook_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("forge", sa.String(16), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("delivery", sa.String(100)),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(300), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_hook_log_project", "srv_hook_log", ["project", "id"])


def downgrade() -> None:
    op.drop_table("srv_hook_log")
    op.drop_table("srv_forge_statuses")
