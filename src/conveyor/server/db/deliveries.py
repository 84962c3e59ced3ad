"""Webhook deliveries seen within the replay window (their ids and body digests).

A key is remembered atomically: of two identical deliveries arriving together, the
primary key lets exactly one in. Rows older than the window are pruned on each insert.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from conveyor.server.db import tables as t


class Deliveries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def remember(self, project: str, keys: list[str], window: float) -> str | None:
        """Record ``keys``; if one was seen within ``window`` seconds, record nothing and
        return it."""
        now = time.time()
        table = t.deliveries
        try:
            with self.engine.begin() as conn:
                conn.execute(table.delete().where(table.c.received_at < now - window))
                seen = conn.execute(
                    sa.select(table.c.key).where(
                        (table.c.project == project) & table.c.key.in_(keys)
                    )
                ).first()
                if seen is not None:
                    return str(seen[0])
                conn.execute(
                    table.insert(),
                    [{"project": project, "key": k, "received_at": now} for k in keys],
                )
        except sa.exc.IntegrityError:  # the same delivery, inserted by a concurrent request
            return keys[0]
        return None

    def forget(self, project: str, keys: list[str]) -> None:
        """Drop ``keys`` again (a delivery that queued nothing may be delivered again)."""
        table = t.deliveries
        with self.engine.begin() as conn:
            conn.execute(table.delete().where((table.c.project == project) & table.c.key.in_(keys)))
