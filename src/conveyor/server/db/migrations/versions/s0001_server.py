"""Server tables: projects, users, tokens, members, run queue, secrets, schedules.

Revision ID: s0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_projects",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("webhook_secret", sa.LargeBinary),
    )
    op.create_table(
        "srv_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "srv_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_tokens_user", "srv_tokens", ["user_id"])
    op.create_table(
        "srv_members",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_table(
        "srv_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("worker", sa.String(200)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result_commit", sa.String(64)),
    )
    op.create_index("ix_srv_runs_status", "srv_runs", ["status", "created_at"])
    op.create_index("ix_srv_runs_project", "srv_runs", ["project", "created_at"])
    op.create_table(
        "srv_secrets",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "srv_schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False, server_default="api"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_schedules_next", "srv_schedules", ["next_at"])


def downgrade() -> None:
    for name in (
        "srv_schedules",
        "srv_secrets",
        "srv_runs",
        "srv_members",
        "srv_tokens",
        "srv_users",
        "srv_projects",
    ):
        op.drop_table(name)
