"""The Craft API's access tokens, hashed, with their expiry and the API token they came
from (deleting that token revokes them), shared by every HTTP process and a restart.

Revision ID: s0007_crafttokens
Revises: s0005_deployments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0007_crafttokens"
down_revision = "s0006_pachjobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_craft_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("parent", sa.String(64), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_srv_craft_tokens_parent", "srv_craft_tokens", ["parent"])
    op.create_index("ix_srv_craft_tokens_expires", "srv_craft_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("srv_craft_tokens")
