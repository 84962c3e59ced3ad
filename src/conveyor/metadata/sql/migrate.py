"""Bring a database to the newest schema; Alembic is imported only when work is due."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

HEAD = "0001"  # the newest revision in migrations/versions (a test keeps them in step)
MIGRATIONS = Path(__file__).with_name("migrations")


def current_revision(connection: sa.Connection) -> str | None:
    try:
        row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except sa.exc.DBAPIError:
        connection.rollback()
        return None
    return None if row is None else str(row[0])


def upgrade(engine: sa.Engine) -> None:
    """Apply pending migrations (no-op and no Alembic import when already at HEAD)."""
    with engine.connect() as connection:
        if current_revision(connection) == HEAD:
            return
    with migration_lock(engine):
        with engine.connect() as connection:  # another process may have migrated meanwhile
            if current_revision(connection) == HEAD:
                return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


@contextlib.contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialise migrations between processes: a lock file for SQLite, an advisory lock
    for PostgreSQL."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.migrate-lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT pg_advisory_lock(81712)")
            try:
                yield
            finally:
                connection.exec_driver_sql("SELECT pg_advisory_unlock(81712)")
                connection.commit()
        return
    yield
