"""Open the server database: run records (their chain) plus the server tables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from conveyor.errors import MetadataError
from conveyor.metadata.sql import SqlRepository, open_repository
from conveyor.server.db.accounts import Accounts
from conveyor.server.db.crafttokens import CraftTokens
from conveyor.server.db.migrate import upgrade
from conveyor.server.db.pachyderm_queue import TriggerQueue
from conveyor.server.db.queue import RunQueue
from conveyor.server.db.schedules import Schedules


@dataclass
class ServerDatabase:
    records: SqlRepository
    accounts: Accounts
    queue: RunQueue
    schedules: Schedules = field(init=False)
    pachyderm: TriggerQueue = field(init=False)
    craft_tokens: CraftTokens = field(init=False)

    def __post_init__(self) -> None:
        self.schedules = Schedules(self.records.engine)
        self.pachyderm = TriggerQueue(self.records.engine)
        self.craft_tokens = CraftTokens(self.records.engine)

    @property
    def engine(self) -> sa.Engine:
        return self.records.engine

    def close(self) -> None:
        self.records.close()


def open_database(url: str) -> ServerDatabase:
    _private_sqlite_file(url)
    records = open_repository(url)
    try:
        upgrade(records.engine)
    except sa.exc.DBAPIError as exc:
        raise MetadataError(f"cannot open the server database {url}: {exc.orig}") from exc
    return ServerDatabase(records, Accounts(records.engine), RunQueue(records.engine))


def _private_sqlite_file(url: str) -> None:
    """An SQLite database (and so its WAL and shared-memory files, which SQLite creates
    with the database's mode) is readable by the server's user only: it holds every
    project's encrypted secrets and the token hashes."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for each in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        if each.exists() and each.stat().st_mode & 0o077:
            each.chmod(0o600)
