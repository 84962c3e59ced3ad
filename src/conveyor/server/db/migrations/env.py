"""Alembic environment of the server tables (own version table, same database)."""

from __future__ import annotations

from alembic import context

from conveyor.server.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="conveyor_server_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
