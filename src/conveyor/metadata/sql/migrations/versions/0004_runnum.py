"""Run numbers: each run gets the next number of its scope (a project), as a Drone build
gets the next number of its repository (``DRONE_BUILD_NUMBER``). A counter row per scope
hands them out inside the transaction that records the run, so two runs started at once
never share one. Runs recorded before this revision are numbered in the order they were
created, in the default scope (a local project's).

Revision ID: 0004_runnum
Revises: 0003_lineage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_runnum"
down_revision = "0003_lineage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_numbers",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("number", sa.Integer))
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("number", sa.Integer))
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM runs ORDER BY created_at, id"))]
    for number, run_id in enumerate(ids, start=1):
        conn.execute(runs.update().where(runs.c.id == run_id).values(number=number))
    if ids:
        counters = sa.table("run_numbers", sa.column("scope"), sa.column("last_number"))
        conn.execute(counters.insert().values(scope="", last_number=len(ids)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("number")
    op.drop_table("run_numbers")
