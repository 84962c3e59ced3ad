"""The records repository on the stdlib ``sqlite3`` module, for a local SQLite file.

The CLI and the SDK use it so that a run or a read-only command never imports SQLAlchemy;
the schema stays the Alembic chain's in ``metadata/sql`` (run only when one is due).
"""

from conveyor.metadata.lite.repository import LiteRepository, open_lite

__all__ = ["LiteRepository", "open_lite"]
