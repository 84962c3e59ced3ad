"""Lineage through datasets: which dataset commit each run read, and where it put it.

A run's ``datasets:`` are resolved to commits when it starts; one row per checkout, so an
artifact's lineage reaches the dataset commit its inputs came from, and a dataset
commit's lineage lists the runs that read it.

Revision ID: 0003_lineage
Revises: 0002_datasets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lineage"
down_revision = "0002_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_datasets",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("commit_id", sa.String(32), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
    )
    op.create_index("ix_run_datasets_commit", "run_datasets", ["dataset", "commit_id"])


def downgrade() -> None:
    op.drop_table("run_datasets")
