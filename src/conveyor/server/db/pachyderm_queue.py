"""The Pachyderm trigger queue: the jobs a dataset commit or a pipeline change owes.

A dataset commit made by a route or a cron tick writes its trigger in the commit's own
transaction (:meth:`TriggerQueue.on_commit`: the records are in this database), so a
crash leaves both or neither. Older servers wrote a *held* trigger (a row nobody may
claim) ahead of its commit instead; a server starting queues any such row left behind
(:meth:`TriggerQueue.release_held`: one whose commit never landed costs one job over
unchanged heads, which reuses every datum). A trigger is claimed by exactly one claimer,
``UPDATE ... WHERE status = 'queued'``, and only while no other trigger of its project
runs: a project's jobs run one at a time and in order (never two jobs of one pipeline at
once), while other projects' jobs run beside them. On PostgreSQL an advisory lock per
project makes that check and the claim one step; SQLite's writer lock does the same.
Running rows carry a heartbeat; one whose claimer stopped beating goes back to the
queue, and its job resumes (the datums that finished are reused).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.server.db import tables as t

HELD, QUEUED, RUNNING = "held", "queued", "running"
COMMIT, PIPELINE, CI = "commit", "pipeline", "ci"
_T = t.pachyderm_triggers
_W = t.pachyderm_workers
WORKER_ROWS_KEPT = 7 * 24 * 3600.0
"""Seconds a worker that stopped asking keeps its row (every restart adds a name)."""
_S = t.pachyderm_ci_seen
CI_SEEN_KEPT = 1000
"""Pushed commits a project remembers as CI-queued, newest first (older rows are dropped
as new ones come). A count, not an age: a quiet project keeps its head's row however old
it is; a commit older than the newest ``CI_SEEN_KEPT`` has its flow again only if pushed
again as the head (a force-push that far back)."""


@dataclass(frozen=True)
class Trigger:
    id: str
    project: str
    kind: str
    """``commit`` (``name`` is a dataset, ``branch`` its branch), ``pipeline``, or
    ``ci`` (``name`` is a pushed git commit, ``branch`` its branch: ``server/pachyderm_ci``)."""
    name: str
    branch: str
    worker: str | None

    @staticmethod
    def from_row(row: Any) -> Trigger:
        m = row._mapping
        return Trigger(**{k: m[k] for k in Trigger.__dataclass_fields__})


class TriggerQueue:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def enqueue(self, project: str, kind: str, name: str, branch: str = "") -> str:
        """A trigger claimable at once (what it reads is already committed); the same
        one already waiting is returned instead (a cron ticking faster than its jobs
        adds nothing to the queue)."""
        with self.engine.connect() as conn:
            waiting = conn.execute(
                sa.select(_T.c.id).where(_same(project[:100], kind, name[:100], branch[:100]))
            ).first()
        if waiting is not None:
            return str(waiting[0])
        return self._insert(project, kind, name, branch)

    def on_commit(self, project: str) -> Callable[[Any, str, str], None]:
        """What a dataset commit (or branch move) of ``project`` writes in its own
        transaction: the trigger of its downstream jobs, queued, so the commit and its
        trigger land together or not at all (the records are in this database)."""

        def queue(conn: Any, dataset: str, branch: str) -> None:
            queue_in(conn, project, COMMIT, dataset, branch)

        return queue

    def enqueue_ci(self, project: str, commit: str, branch: str) -> str | None:
        """The ``ci`` trigger of a pushed commit, once per commit whatever brought it (a
        push, a webhook, a mirror fetch, again later): the commit is marked seen in the
        same transaction; None when it was seen before."""
        trigger_id, now = secrets.token_hex(8), time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    _S.insert().values(project=project[:100], commit=commit, queued_at=now)
                )
                conn.execute(
                    _T.insert().values(
                        id=trigger_id, project=project[:100], kind=CI, name=commit,
                        branch=branch[:100], status=QUEUED, created_at=now,
                    )
                )  # fmt: skip
        except sa.exc.IntegrityError:  # seen: by another route, maybe at this moment
            return None
        with self.engine.begin() as conn:
            conn.execute(_prune_seen(project[:100]))
        return trigger_id

    def _insert(self, project: str, kind: str, name: str, branch: str) -> str:
        trigger_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(
                _T.insert().values(
                    id=trigger_id,
                    project=project[:100],
                    kind=kind,
                    name=name[:100],
                    branch=branch[:100],
                    status=QUEUED,
                    created_at=time.time(),
                )
            )
        return trigger_id

    def claim(self, worker: str, projects: list[str]) -> Trigger | None:
        """The oldest queued trigger of one of ``projects`` none of whose triggers runs,
        for this worker; None when there is none."""
        if not projects:
            return None
        busy = sa.select(_T.c.project).where(_T.c.status == RUNNING)
        pick = (
            sa.select(_T.c.id, _T.c.project)
            .where((_T.c.status == QUEUED) & _T.c.project.in_(projects))
            .where(_T.c.project.not_in(busy))
            .order_by(_T.c.created_at)
            .limit(8)
        )
        with self.engine.connect() as conn:
            candidates = [(str(r[0]), str(r[1])) for r in conn.execute(pick)]
        for trigger_id, project in candidates:
            now = time.time()
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(project))))
                running = sa.select(_T.c.id).where(
                    (_T.c.project == project) & (_T.c.status == RUNNING)
                )
                # the older trigger of the project first: this one waits behind it
                first = conn.execute(
                    sa.select(_T.c.id)
                    .where((_T.c.project == project) & (_T.c.status == QUEUED))
                    .order_by(_T.c.created_at)
                    .limit(1)
                ).first()
                if first is None or first[0] != trigger_id:
                    continue
                changed = conn.execute(
                    _T.update()
                    .where((_T.c.id == trigger_id) & (_T.c.status == QUEUED))
                    .where(~sa.exists(running))
                    .values(status=RUNNING, worker=worker[:200], heartbeat_at=now)
                ).rowcount
            if changed == 1:
                return self.get(trigger_id)
        return None

    def get(self, trigger_id: str) -> Trigger | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.id == trigger_id)).first()
        return None if row is None else Trigger.from_row(row)

    def pending(self, project: str | None = None) -> list[dict[str, Any]]:
        """The triggers not done yet, oldest first (for operators and tests)."""
        query = sa.select(_T).order_by(_T.c.created_at)
        if project is not None:
            query = query.where(_T.c.project == project)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def finish(self, trigger_id: str, worker: str) -> None:
        """Its jobs ran (or failed, recorded in the jobs): the trigger is done, unless
        it went stale meanwhile and another claimer holds it now."""
        with self.engine.begin() as conn:
            mine = (_T.c.id == trigger_id) & (_T.c.worker == worker[:200])
            conn.execute(_T.delete().where(mine))

    def heartbeat(self, trigger_ids: list[str], worker: str) -> None:
        if not trigger_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                _T.update()
                .where(_T.c.id.in_(trigger_ids) & (_T.c.status == RUNNING))
                .where(_T.c.worker == worker[:200])
                .values(heartbeat_at=time.time())
            )

    def recover_stale(self, stale_after: float) -> int:
        """Running triggers whose claimer stopped beating go back to the queue."""
        limit = time.time() - stale_after
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    _T.update()
                    .where((_T.c.status == RUNNING) & (_T.c.heartbeat_at < limit))
                    .values(status=QUEUED, worker=None, heartbeat_at=None)
                ).rowcount
            )

    def release_held(self) -> int:
        """A server starting queues the held rows an older server's routes left when it
        stopped (their commit may have landed); nothing holds rows any more."""
        with self.engine.begin() as conn:
            held = _T.update().where(_T.c.status == HELD).values(status=QUEUED)
            return int(conn.execute(held).rowcount)

    def seen(self, worker: str) -> None:
        """A ``conveyor worker`` asked for triggers now (read by :meth:`unattended`)."""
        now, name = time.time(), worker[:200]
        with self.engine.begin() as conn:
            if conn.execute(_W.update().where(_W.c.name == name).values(last_seen=now)).rowcount:
                return
        # the same name inserted at once elsewhere: it is seen all the same
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:
            conn.execute(_W.insert().values(name=name, last_seen=now))
        # a new name (a restarted worker's): drop the long-gone ones, which no count reads
        with self.engine.begin() as conn:
            conn.execute(_W.delete().where(_W.c.last_seen < now - WORKER_ROWS_KEPT))

    def unattended(self, project: str, queued_for: float, unseen_for: float) -> int:
        """How many of ``project``'s triggers have been queued longer than ``queued_for``
        seconds while no worker asked for work in the last ``unseen_for``; 0 when one did."""
        now = time.time()
        with self.engine.connect() as conn:
            recent = conn.execute(
                sa.select(_W.c.name).where(_W.c.last_seen >= now - unseen_for).limit(1)
            ).first()
            if recent is not None:
                return 0
            old = (
                (_T.c.project == project)
                & (_T.c.status == QUEUED)
                & (_T.c.created_at < now - queued_for)
            )
            return int(conn.execute(sa.select(sa.func.count()).where(old)).scalar_one())

    def restart(self, worker: str) -> None:
        """A claimer starting under ``worker`` queues again what it ran when it stopped."""
        with self.engine.begin() as conn:
            conn.execute(
                _T.update()
                .where((_T.c.status == RUNNING) & (_T.c.worker == worker[:200]))
                .values(status=QUEUED, worker=None, heartbeat_at=None)
            )


def queue_in(conn: Any, project: str, kind: str, name: str, branch: str) -> None:
    """A queued trigger written on ``conn`` (the caller's transaction), unless the same
    one already waits (it reads the heads when it runs: it covers this one too)."""
    project, name, branch = project[:100], name[:100], branch[:100]
    if conn.execute(sa.select(_T.c.id).where(_same(project, kind, name, branch))).first():
        return
    conn.execute(
        _T.insert().values(
            id=secrets.token_hex(8), project=project, kind=kind, name=name, branch=branch,
            status=QUEUED, created_at=time.time(),
        )
    )  # fmt: skip


def _prune_seen(project: str) -> sa.Delete:
    """Drop ``project``'s seen rows older than its ``CI_SEEN_KEPT`` newest (none while it
    has fewer: the bound is then NULL)."""
    bound = (
        sa.select(_S.c.queued_at)
        .where(_S.c.project == project)
        .order_by(_S.c.queued_at.desc())
        .offset(CI_SEEN_KEPT - 1)
        .limit(1)
        .scalar_subquery()
    )
    return _S.delete().where((_S.c.project == project) & (_S.c.queued_at < bound))


def _same(project: str, kind: str, name: str, branch: str) -> sa.ColumnElement[bool]:
    """The queued triggers equal to this one."""
    return (
        (_T.c.project == project)
        & (_T.c.kind == kind)
        & (_T.c.name == name)
        & (_T.c.branch == branch)
        & (_T.c.status == QUEUED)
    )


def _lock_key(project: str) -> int:
    digest = hashlib.blake2b(f"pachyderm\0{project}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
