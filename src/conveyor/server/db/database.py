"""Open the server database: run records (their chain) plus the server tables."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from conveyor.errors import MetadataError
from conveyor.metadata.sql import SqlRepository, open_repository
from conveyor.server.db.accounts import Accounts
from conveyor.server.db.migrate import upgrade
from conveyor.server.db.queue import RunQueue


@dataclass
class ServerDatabase:
    records: SqlRepository
    accounts: Accounts
    queue: RunQueue

    @property
    def engine(self) -> sa.Engine:
        return self.records.engine

    def close(self) -> None:
        self.records.close()


def open_database(url: str) -> ServerDatabase:
    records = open_repository(url)
    try:
        upgrade(records.engine)
    except sa.exc.DBAPIError as exc:
        raise MetadataError(f"cannot open the server database {url}: {exc.orig}") from exc
    return ServerDatabase(records, Accounts(records.engine), RunQueue(records.engine))
