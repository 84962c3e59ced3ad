"""Server tables. Schema changes go through Alembic revisions in ``migrations/``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from conveyor.domain.states import RunStatus

metadata = sa.MetaData()


class RunStatusText(sa.types.TypeDecorator[RunStatus]):
    """A :class:`RunStatus` stored as its value (the same text as before the type)."""

    impl = sa.String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else RunStatus(value).value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> RunStatus | None:
        return None if value is None else RunStatus(value)


projects = sa.Table(
    "srv_projects",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("webhook_secret", sa.LargeBinary),
)

users = sa.Table(
    "srv_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

tokens = sa.Table(
    "srv_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_srv_tokens_user", "user_id"),
)

members = sa.Table(
    "srv_members",
    metadata,
    sa.Column("project", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

runs = sa.Table(
    "srv_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("status", RunStatusText(), nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("who", sa.String(100), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("worker", sa.String(200)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result_commit", sa.String(64)),
    # the run's pipeline once a worker compiled it, and how many of its runs may run at
    # once (Drone's `concurrency: {limit}`; None: no limit)
    sa.Column("pipeline", sa.String(200)),
    sa.Column("concurrency", sa.Integer),
    sa.Index("ix_srv_runs_status", "status", "created_at"),
    sa.Index("ix_srv_runs_project", "project", "created_at"),
)

secrets = sa.Table(
    "srv_secrets",
    metadata,
    sa.Column("project", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

schedules = sa.Table(
    "srv_schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("cron", sa.String(100), nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False, server_default="api"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_srv_schedules_next", "next_at"),
)

deliveries = sa.Table(
    "srv_deliveries",
    metadata,
    sa.Column("project", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Index("ix_srv_deliveries_received", "received_at"),
)

forge_statuses = sa.Table(
    "srv_forge_statuses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("forge", sa.String(16), nullable=False),
    sa.Column("api", sa.String(300), nullable=False),
    sa.Column("repo", sa.String(300), nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("web_url", sa.String(300)),  # the repository's page, for commit links
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("description", sa.String(140), nullable=False),
    sa.Column("target_url", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.Float),  # None: sent, superseded or given up
    sa.Column("sent_at", sa.Float),
    sa.Column("outcome", sa.String(300)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_srv_forge_statuses_next", "next_at"),
    sa.Index("ix_srv_forge_statuses_run", "run_id"),
)

hook_log = sa.Table(
    "srv_hook_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("forge", sa.String(16), nullable=False),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("delivery", sa.String(100)),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(300), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Index("ix_srv_hook_log_project", "project", "id"),
)

deployments = sa.Table(
    "srv_deployments",
    metadata,
    sa.Column("project", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("follow", sa.Boolean, nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("token_digest", sa.String(64)),
    sa.Column("next_at", sa.Float),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_srv_deployments_next", "next_at"),
)

deployment_executions = sa.Table(
    "srv_deployment_executions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("deployment", sa.String(100), nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("caller", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON),
    sa.Column("logs", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Index("ix_srv_deployment_executions_of", "project", "deployment", "created_at"),
)

pachyderm_triggers = sa.Table(
    "srv_pachyderm_triggers",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("branch", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float),
    sa.Index("ix_srv_pachyderm_triggers_status", "status", "created_at"),
)

pachyderm_workers = sa.Table(
    "srv_pachyderm_workers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),  # a `conveyor worker`'s claimer
    sa.Column("last_seen", sa.Float, nullable=False),  # when it last asked for triggers
)

pachyderm_ci_seen = sa.Table(
    "srv_pachyderm_ci_seen",
    metadata,
    sa.Column("project", sa.String(100), primary_key=True),
    sa.Column("commit", sa.String(64), primary_key=True),  # its CI flow was queued once
    sa.Column("queued_at", sa.Float, nullable=False),
)

craft_tokens = sa.Table(
    "srv_craft_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("parent", sa.String(64), nullable=False),  # the API token's digest
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_srv_craft_tokens_parent", "parent"),
    sa.Index("ix_srv_craft_tokens_expires", "expires_at"),
)
