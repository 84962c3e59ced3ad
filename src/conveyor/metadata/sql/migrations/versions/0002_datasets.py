"""Versioned datasets: datasets, their immutable commits and their moving branch heads.

Dataset columns are wider than a name (63 characters): room for a server to qualify names
by project (``project/name``) without another migration.

Revision ID: 0002_datasets
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_datasets"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_table(
        "dataset_commits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("parent", sa.String(32)),
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("tree", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("provenance", sa.JSON, nullable=False),
    )
    op.create_index("ix_dataset_commits_dataset", "dataset_commits", ["dataset"])
    op.create_index("ix_dataset_commits_tree", "dataset_commits", ["tree"])
    op.create_table(
        "dataset_branches",
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("head", sa.String(32)),
    )


def downgrade() -> None:
    for table in ("dataset_branches", "dataset_commits", "datasets"):
        op.drop_table(table)
