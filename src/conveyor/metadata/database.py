"""Which records repository a database URL opens: the one place that picks."""

from __future__ import annotations

from pathlib import Path

from conveyor.metadata.repository import MetadataRepository


def open_records(url: str) -> MetadataRepository:
    """A plain local SQLite file (``sqlite:///path``) opens the stdlib ``LiteRepository``
    (no SQLAlchemy import while the schema is current); anything else (PostgreSQL, an
    in-memory or driver-qualified SQLite URL, query options) the SQLAlchemy one. The
    server opens ``metadata.sql`` itself."""
    path = sqlite_file(url)
    if path is not None:
        from conveyor.metadata.lite import open_lite

        return open_lite(path)
    from conveyor.metadata.sql import open_repository

    return open_repository(url)


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for any other URL, or one whose
    path SQLAlchemy would read differently (query string, escapes, in-memory)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///")
    if not rest or rest == ":memory:" or any(c in rest for c in "?#%"):
        return None
    return Path(rest)
