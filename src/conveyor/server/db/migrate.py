"""Bring the server tables to the newest schema (after the run records' own chain)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from conveyor.metadata.sql.migrate import migration_lock

HEAD = "s0001"  # the newest revision in migrations/versions
MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "conveyor_server_version"


def current_revision(connection: sa.Connection) -> str | None:
    try:
        row = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").first()
    except sa.exc.DBAPIError:
        connection.rollback()
        return None
    return None if row is None else str(row[0])


def upgrade(engine: sa.Engine) -> None:
    """Apply pending migrations; no Alembic import when already at HEAD."""
    with engine.connect() as connection:
        if current_revision(connection) == HEAD:
            return
    with migration_lock(engine):
        with engine.connect() as connection:
            if current_revision(connection) == HEAD:
                return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
