"""Bring the server tables to the newest schema (after the run records' own chain)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from conveyor.metadata.sql.migrate import current_revision as revision_of
from conveyor.metadata.sql.migrate import upgrade_chain

HEAD = "s0009_pachciseen"  # the newest revision in migrations/versions
MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "conveyor_server_version"


def current_revision(connection: sa.Connection) -> str | None:
    return revision_of(connection, VERSION_TABLE)


def upgrade(engine: sa.Engine) -> None:
    """Apply pending migrations; no Alembic import when already at HEAD."""
    upgrade_chain(engine, MIGRATIONS, HEAD, VERSION_TABLE)
