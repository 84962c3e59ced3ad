"""Webhook deliveries remembered for the replay window.

Revision ID: s0002
Revises: s0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_deliveries",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_deliveries_received", "srv_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_table("srv_deliveries")
