"""Bring a database to the newest schema; Alembic is imported only when work is due."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from conveyor.metadata.revision import HEAD

__all__ = ["HEAD", "MIGRATIONS", "current_revision", "migration_lock", "upgrade", "upgrade_chain"]
MIGRATIONS = Path(__file__).with_name("migrations")


def current_revision(connection: sa.Connection, table: str = "alembic_version") -> str | None:
    """The revision a chain's version table holds; None before the first migration."""
    try:
        row = connection.exec_driver_sql(f"SELECT version_num FROM {table}").first()
    except sa.exc.DBAPIError:
        connection.rollback()
        return None
    return None if row is None else str(row[0])


def upgrade(engine: sa.Engine) -> None:
    """Apply pending migrations of the run records (no Alembic import when at HEAD)."""
    upgrade_chain(engine, MIGRATIONS, HEAD)


def upgrade_chain(
    engine: sa.Engine, migrations: Path, head: str, table: str = "alembic_version"
) -> None:
    """Bring one chain of migrations (its env.py names its version ``table``) to ``head``."""
    with engine.connect() as connection:
        if current_revision(connection, table) == head:
            return
    with migration_lock(engine):
        with engine.connect() as connection:  # another process may have migrated meanwhile
            if current_revision(connection, table) == head:
                return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(migrations))
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
