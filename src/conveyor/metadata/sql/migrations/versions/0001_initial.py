"""Initial schema: runs, step runs, lineage edges, cache entries, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64)),
        sa.Column("dirty", sa.Boolean, nullable=False),
        sa.Column("diff_digest", sa.String(64)),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("spec_path", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("workdir", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "step_runs",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("step_id", sa.String(400), primary_key=True),
        sa.Column("job", sa.String(400), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("cached_from", sa.String(32)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("log_path", sa.Text),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("parts", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_step_runs_step_id", "step_runs", ["step_id"])
    op.create_table(
        "step_outputs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("step_id", sa.String(400), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_step_outputs_digest", "step_outputs", ["digest"])
    op.create_index("ix_step_outputs_path", "step_outputs", ["path"])
    op.create_table(
        "step_inputs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("step_id", sa.String(400), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_step_inputs_digest", "step_inputs", ["digest"])
    op.create_table(
        "cache_entries",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("step_id", sa.String(400), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
    )
    op.create_index("ix_cache_entries_step_id", "cache_entries", ["step_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_id", sa.String(400)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_run_id", "events", ["run_id"])


def downgrade() -> None:
    for table in ("events", "cache_entries", "step_inputs", "step_outputs", "step_runs", "runs"):
        op.drop_table(table)
