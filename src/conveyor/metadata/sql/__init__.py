"""SQLAlchemy Core implementation of the metadata repository (SQLite or PostgreSQL)."""

from conveyor.metadata.sql.repository import SqlRepository, open_repository

__all__ = ["SqlRepository", "open_repository"]
