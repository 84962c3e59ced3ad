"""Commit statuses owed to forges: an outbox in the server database, so a status the
forge could not take yet (it was down) is still sent after a server restart.

A row is due while ``next_at`` is set and past. A sender claims a due row by moving
its ``next_at`` forward (a lease), so two server processes never send the same row;
only the newest row of a run is sent, older unsent ones are superseded (a forge shows
the last state it was told, and an old ``pending`` must not overwrite a ``success``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.server.db import tables as t

LEASE = 60.0  # seconds a claimed row stays with its sender
KEEP_HOOKS = 50  # deliveries kept per project for the settings page


@dataclass(frozen=True)
class ForgeLink:
    """Where a run's commit lives on its forge: which API, which repository."""

    forge: str  # github | gitlab
    api: str  # the API's base URL
    repo: str  # GitHub: owner/name; GitLab: the project's id or path
    commit: str
    ref: str
    web: str = ""  # the repository's page (from the payload, checked), for commit links


@dataclass(frozen=True)
class OwedStatus:
    id: int
    project: str
    run_id: str
    link: ForgeLink
    state: str
    description: str
    target_url: str
    attempts: int


class Statuses:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self,
        project: str,
        run_id: str,
        link: ForgeLink,
        state: str,
        description: str,
        target_url: str,
    ) -> None:
        now = time.time()
        table = t.forge_statuses
        with self.engine.begin() as conn:
            conn.execute(  # an older state still owed would overwrite this one: dropped
                table.update()
                .where((table.c.run_id == run_id) & table.c.next_at.is_not(None))
                .values(next_at=None, outcome="superseded by a newer state")
            )
            conn.execute(
                table.insert().values(
                    project=project,
                    run_id=run_id,
                    forge=link.forge,
                    api=link.api[:300],
                    repo=link.repo[:300],
                    commit=link.commit,
                    ref=link.ref,
                    web_url=link.web[:300] or None,
                    state=state,
                    description=description[:140],
                    target_url=target_url,
                    attempts=0,
                    next_at=now,
                    created_at=now,
                )
            )

    def link_of(self, run_id: str) -> tuple[str, ForgeLink, str] | None:
        """The project, forge and page URL of a run a webhook started, else None."""
        table = t.forge_statuses
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.project, _link(row._mapping), row.target_url)

    def claim_due(self, limit: int = 20) -> list[OwedStatus]:
        """Due rows, leased to this caller; older unsent rows of the same run superseded."""
        table = t.forge_statuses
        now = time.time()
        query = (
            sa.select(table)
            .where(table.c.next_at.is_not(None) & (table.c.next_at <= now))
            .order_by(table.c.id)
            .limit(limit)
        )
        claimed: list[OwedStatus] = []
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            newest = {row.run_id: row.id for row in rows}
            for row in rows:
                if row.id != newest[row.run_id]:
                    self._close(conn, row.id, row.next_at, "superseded by a newer state")
                    continue
                taken = conn.execute(
                    table.update()
                    .where((table.c.id == row.id) & (table.c.next_at == row.next_at))
                    .values(next_at=now + LEASE)
                ).rowcount
                if taken:
                    claimed.append(_owed(row._mapping))
        return claimed

    def _close(self, conn: sa.Connection, row_id: int, expected: Any, outcome: str) -> None:
        table = t.forge_statuses
        conn.execute(
            table.update()
            .where((table.c.id == row_id) & (table.c.next_at == expected))
            .values(next_at=None, outcome=outcome[:300])
        )

    def sent(self, row_id: int, outcome: str) -> None:
        self._finish(row_id, {"next_at": None, "sent_at": time.time(), "outcome": outcome})

    def gave_up(self, row_id: int, outcome: str) -> None:
        self._finish(row_id, {"next_at": None, "outcome": outcome[:300]})

    def retry(self, row_id: int, attempts: int, at: float, outcome: str) -> None:
        """Due again at ``at``, unless a newer state superseded it meanwhile."""
        values = {"attempts": attempts, "next_at": at, "outcome": outcome[:300]}
        self._finish(row_id, values, still_owed=True)

    def _finish(self, row_id: int, values: dict[str, Any], still_owed: bool = False) -> None:
        table = t.forge_statuses
        where = table.c.id == row_id
        if still_owed:
            where &= table.c.next_at.is_not(None)
        with self.engine.begin() as conn:
            conn.execute(table.update().where(where).values(**values))

    def prune(self, before: float) -> int:
        """Forget rows closed (sent, superseded, given up) and created before ``before``."""
        table = t.forge_statuses
        old = table.c.next_at.is_(None) & (table.c.created_at < before)
        with self.engine.begin() as conn:
            return int(conn.execute(table.delete().where(old)).rowcount)

    def for_run(self, run_id: str) -> list[dict[str, Any]]:
        table = t.forge_statuses
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def recent(self, project: str, limit: int = 20) -> list[dict[str, Any]]:
        return _newest(self.engine, t.forge_statuses, project, limit)


class HookLog:
    """The last webhook deliveries of each project: what came, what the server answered."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self, project: str, forge: str, event: str, delivery: str | None, code: int, outcome: str
    ) -> None:
        table = t.hook_log
        with self.engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    project=project,
                    forge=forge,
                    event=event[:100],
                    delivery=delivery[:100] if delivery else None,
                    code=code,
                    outcome=outcome[:300],
                    received_at=time.time(),
                )
            )
            kept = (
                sa.select(table.c.id)
                .where(table.c.project == project)
                .order_by(table.c.id.desc())
                .limit(KEEP_HOOKS)
            )
            oldest = conn.execute(sa.select(sa.func.min(kept.subquery().c.id))).scalar()
            if oldest is not None:
                conn.execute(
                    table.delete().where((table.c.project == project) & (table.c.id < oldest))
                )

    def recent(self, project: str, limit: int = 20) -> list[dict[str, Any]]:
        return _newest(self.engine, t.hook_log, project, limit)


def _newest(engine: sa.Engine, table: sa.Table, project: str, limit: int) -> list[dict[str, Any]]:
    """A project's newest rows of ``table`` (an ``id`` column), newest first."""
    query = (
        sa.select(table).where(table.c.project == project).order_by(table.c.id.desc()).limit(limit)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _link(row: Any) -> ForgeLink:
    web = row.get("web_url") or ""
    return ForgeLink(row["forge"], row["api"], row["repo"], row["commit"], row["ref"], web)


def _owed(row: Any) -> OwedStatus:
    return OwedStatus(
        row["id"],
        row["project"],
        row["run_id"],
        _link(row),
        row["state"],
        row["description"],
        row["target_url"],
        row["attempts"],
    )
