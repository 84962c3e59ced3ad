"""Project secrets: encrypted values; only names ever leave through the API."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa

from conveyor.errors import UsageError
from conveyor.server.db import tables as t

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def check_name(name: str) -> None:
    if not SECRET_NAME.fullmatch(name) or name.startswith("CONVEYOR_"):
        raise UsageError(
            f"{name!r} is not a valid secret name: use an environment variable name "
            "(letters, digits, '_') that does not start with CONVEYOR_"
        )


class Vault:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put(self, project: str, name: str, encrypted: bytes, reserved: bool = False) -> None:
        """Store a secret; ``reserved``: a server's own (``CONVEYOR_*``), never a step's."""
        if not (reserved and name.startswith("CONVEYOR_")):
            check_name(name)
        key = (t.secrets.c.project == project) & (t.secrets.c.name == name)
        with self.engine.begin() as conn:
            conn.execute(t.secrets.delete().where(key))
            conn.execute(
                t.secrets.insert().values(
                    project=project, name=name, value=encrypted, updated_at=time.time()
                )
            )

    def delete(self, project: str, name: str) -> bool:
        key = (t.secrets.c.project == project) & (t.secrets.c.name == name)
        with self.engine.begin() as conn:
            return bool(conn.execute(t.secrets.delete().where(key)).rowcount)

    def names(self, project: str) -> list[str]:
        """The names of the project's own secrets (not the server's reserved ones)."""
        query = sa.select(t.secrets.c.name).where(t.secrets.c.project == project)
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(query) if not r[0].startswith("CONVEYOR_"))

    def encrypted(self, project: str) -> dict[str, bytes]:
        query = sa.select(t.secrets.c.name, t.secrets.c.value).where(t.secrets.c.project == project)
        with self.engine.connect() as conn:
            return {r.name: bytes(r.value) for r in conn.execute(query)}
