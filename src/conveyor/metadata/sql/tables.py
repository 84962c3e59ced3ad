"""Table definitions. Schema changes go through Alembic revisions in ``migrations/``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("commit", sa.String(64)),
    sa.Column("dirty", sa.Boolean, nullable=False, default=False),
    sa.Column("diff_digest", sa.String(64)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("who", sa.String(200), nullable=False, default=""),
    sa.Column("host", sa.String(200), nullable=False, default=""),
    sa.Column("pid", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("executor", sa.String(64), nullable=False, default="local"),
    sa.Column("spec_path", sa.Text, nullable=False, default=""),
    sa.Column("trigger", sa.String(32), nullable=False, default="manual"),
    sa.Column("workdir", sa.Text, nullable=False, default=""),
    sa.Column("error", sa.Text),
    sa.Column("number", sa.Integer),
    sa.Index("ix_runs_created_at", "created_at"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_number", "number"),  # runs_numbered looks runs up by number alone
)

run_numbers = sa.Table(
    "run_numbers",
    metadata,
    sa.Column("scope", sa.String(200), primary_key=True),  # a project ("" locally)
    sa.Column("last_number", sa.Integer, nullable=False),  # the number the newest run got
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("step_id", sa.String(400), primary_key=True),
    sa.Column("job", sa.String(400), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("cached", sa.Boolean, nullable=False, default=False),
    sa.Column("cached_from", sa.String(32)),
    sa.Column("exit_code", sa.Integer),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("log_path", sa.Text),
    sa.Column("command", sa.Text, nullable=False, default=""),
    sa.Column("parts", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_step_runs_step_id", "step_id"),
)

step_outputs = sa.Table(
    "step_outputs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("step_id", sa.String(400), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Index("ix_step_outputs_digest", "digest"),
    sa.Index("ix_step_outputs_path", "path"),
)

step_inputs = sa.Table(
    "step_inputs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("step_id", sa.String(400), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Index("ix_step_inputs_digest", "digest"),
)

cache_entries = sa.Table(
    "cache_entries",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("step_id", sa.String(400), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Index("ix_cache_entries_step_id", "step_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("step_id", sa.String(400)),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_events_run_id", "run_id"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
)

dataset_commits = sa.Table(
    "dataset_commits",
    metadata,
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
    sa.Index("ix_dataset_commits_dataset", "dataset"),
    sa.Index("ix_dataset_commits_tree", "tree"),
)

dataset_branches = sa.Table(
    "dataset_branches",
    metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("head", sa.String(32)),
)

run_datasets = sa.Table(
    "run_datasets",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("commit_id", sa.String(32), nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Index("ix_run_datasets_commit", "dataset", "commit_id"),
)
