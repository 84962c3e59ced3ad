"""The pushed commits whose Pachyderm CI flow was queued: a commit that reaches the
followed branch by several ways (a git push, a forge webhook, a mirror fetch) queues
its flow exactly once.

Revision ID: s0009_pachciseen
Revises: s0008_pachseen
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0009_pachciseen"
down_revision = "s0008_pachseen"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_pachyderm_ci_seen",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("commit", sa.String(64), primary_key=True),
        sa.Column("queued_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("srv_pachyderm_ci_seen")
