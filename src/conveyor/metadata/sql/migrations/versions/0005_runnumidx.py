"""An index on runs.number: ``runs_numbered`` (``conveyor runs show 12``, the server's
``/runs/12``) looks a run up by its number alone, in every scope, and scanned the whole
runs table without one.

Revision ID: 0005_runnumidx
Revises: 0004_runnum
"""

from __future__ import annotations

from alembic import op

revision = "0005_runnumidx"
down_revision = "0004_runnum"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_number", "runs", ["number"])


def downgrade() -> None:
    op.drop_index("ix_runs_number", table_name="runs")
