"""Cron schedules of the server's projects: the one module that reads and writes them.

A schedule is either declared by a lead through the API (source ``api``) or by the
pipeline file of a branch (source ``pipeline``, replaced on every push to that branch).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from conveyor.server.db import tables as t


def next_time(cron: str, after: float) -> float:
    """When ``cron`` (five fields, UTC) fires next after ``after``; ValueError if invalid."""
    from croniter import croniter

    if not croniter.is_valid(cron):
        raise ValueError("use five fields, e.g. '0 3 * * *'")
    start = datetime.fromtimestamp(after, UTC)
    return float(croniter(cron, start).get_next(float))


class Schedules:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def for_project(self, project: str) -> list[dict[str, Any]]:
        query = sa.select(t.schedules).where(t.schedules.c.project == project)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def add(self, project: str, cron: str, ref: str) -> dict[str, Any]:
        """A schedule from the API; ValueError for an invalid cron expression."""
        now = time.time()
        values = {
            "project": project,
            "cron": cron,
            "ref": ref,
            "next_at": next_time(cron, now),
            "created_at": now,
        }
        with self.engine.begin() as conn:
            key = conn.execute(t.schedules.insert().values(values)).inserted_primary_key
        return {"id": key[0] if key else None, **values}

    def delete(self, project: str, schedule_id: int) -> bool:
        key = (t.schedules.c.id == schedule_id) & (t.schedules.c.project == project)
        with self.engine.begin() as conn:
            return bool(conn.execute(t.schedules.delete().where(key)).rowcount)

    def replace_from_pipeline(self, project: str, ref: str, crons: list[str]) -> list[str]:
        """The schedules a branch's pipeline file declares replace the ones it declared
        before; returns the cron expressions that are not valid (and were left out)."""
        now = time.time()
        rows, invalid = [], []
        for cron in crons:
            try:
                rows.append({"cron": cron, "next_at": next_time(cron, now)})
            except ValueError:
                invalid.append(cron)
        key = (
            (t.schedules.c.project == project)
            & (t.schedules.c.ref == ref)
            & (t.schedules.c.source == "pipeline")
        )
        with self.engine.begin() as conn:
            conn.execute(t.schedules.delete().where(key))
            for row in rows:
                conn.execute(
                    t.schedules.insert().values(
                        project=project, ref=ref, source="pipeline", created_at=now, **row
                    )
                )
        return invalid

    def due(self, now: float) -> list[Any]:
        """The schedules whose time has come (rows with ``id``, ``project``, ``ref``,
        ``cron`` and ``next_at``)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.schedules).where(t.schedules.c.next_at <= now)))

    def advance(self, schedule_id: int, seen: float, following: float) -> bool:
        """Move a due schedule on to ``following``; False when another server process
        advanced it first (``UPDATE ... WHERE next_at = :seen``): that one queues the run."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                t.schedules.update()
                .where((t.schedules.c.id == schedule_id) & (t.schedules.c.next_at == seen))
                .values(next_at=following)
            ).rowcount
        return bool(taken == 1)
