"""Stdlib connections to a local SQLite records file: settings, rows, schema revision."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

JSON_COLUMNS = frozenset(
    {"params", "parts", "outputs", "data", "provenance"}
)  # sa.JSON in sql/tables.py


def connect(path: Path) -> sqlite3.Connection:
    """A connection set up as the SQLAlchemy engine sets its own (``sql/repository.py``):
    WAL so readers never block the running writer, NORMAL sync (durable across process
    kills), a 10 s busy timeout. Transactions are explicit (``BEGIN IMMEDIATE``)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = _row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
    except BaseException:
        conn.close()
        raise
    return conn


def revision(path: Path) -> str | None:
    """The records chain's revision in ``alembic_version``; None before the first one."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA busy_timeout=10000")  # a migration elsewhere may hold a lock
        return revision_of(conn)


def revision_of(conn: sqlite3.Connection) -> str | None:
    """``revision`` asked on an open connection."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    if row is None:
        return None
    return str(row["version_num"] if isinstance(row, dict) else row[0])


_DEFINITIONS = ("CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX ")


def schema_template(head: str) -> Path:
    """Where this machine keeps the schema the Alembic chain made at ``head`` (per user,
    beside the other caches): read back from the first database Alembic created."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "conveyor" / f"records-schema-{head}.json"


def remember_schema(path: Path, head: str) -> None:
    """Keep the schema of ``path``, a database Alembic has just created at ``head``, as the
    template of the next new database (best effort: no template, Alembic again)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        ).fetchall()
    target = schema_template(head)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{os.getpid()}")
        scratch.write_text(json.dumps([row[0] for row in rows]), encoding="utf-8")
        os.replace(scratch, target)


def _template(head: str) -> list[str] | None:
    """The statements of the template at ``head``; None when there is none (or it is not
    one: it must create ``alembic_version``)."""
    try:
        statements = json.loads(schema_template(head).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        return None
    if not any(s.startswith("CREATE TABLE alembic_version") for s in statements):
        return None
    if not all(s.startswith(_DEFINITIONS) for s in statements):
        return None  # a template only ever holds what Alembic defined: tables and indexes
    return statements


def lay_out(path: Path, head: str) -> sqlite3.Connection | None:
    """Create the schema in a new, empty database from this machine's template of
    ``head`` (what Alembic created here before) in one transaction, and give the
    connection that wrote it, open (the caller's to use: closing the database's last
    connection would checkpoint it, with its fsyncs); None, with nothing written, when
    there is no template or the database is not empty.

    Holds the lock file Alembic's migrations take (``sql/migrate.py``), so a migration in
    another process and this never interleave."""
    statements = _template(head)
    if statements is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
                conn.execute("ROLLBACK")
                conn.close()
                return None
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (head,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
    return conn


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    """A row as the shared converters in ``metadata/rows.py`` take it: JSON decoded."""
    row = {d[0]: v for d, v in zip(cursor.description, values, strict=True)}
    for name in JSON_COLUMNS.intersection(row):
        if row[name] is not None:
            row[name] = json.loads(row[name])
    return row
