"""When each ``conveyor worker`` last asked for Pachyderm triggers: a project whose
``pachyderm_jobs`` is ``worker`` and whose triggers wait with no worker asking is told
so (``GET .../jobs/pending``, the CLI, the web page) instead of waiting silently.

Revision ID: s0008_pachseen
Revises: s0007_crafttokens
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0008_pachseen"
down_revision = "s0007_crafttokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "srv_pachyderm_workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("last_seen", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("srv_pachyderm_workers")
