"""The run queue: queued runs are claimed by exactly one worker.

A claim is an ``UPDATE ... WHERE id = :id AND status = 'queued'``: of two workers that
pick the same row, only one sees a changed row; the other tries the next candidate.
Running rows carry a heartbeat; a row whose worker stopped beating is marked
``interrupted`` by whoever notices (its run can be resumed as a new run).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.states import RunStatus
from conveyor.metadata.records import iso
from conveyor.metadata.sql import tables as records
from conveyor.server.db import tables as t

HEARTBEAT = 2.0  # seconds between heartbeats of a running run
STALE_AFTER = 15.0  # seconds without a heartbeat: the worker is gone
FINISHED = tuple(status for status in RunStatus if status.finished)


@dataclass(frozen=True)
class QueuedRun:
    id: str
    project: str
    status: RunStatus
    """The same type as the run's record: the queue row and the record never disagree
    in kind, only in timing (a queued run has no record yet)."""
    ref: str
    commit: str
    trigger: str
    who: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    ended_at: float | None
    worker: str | None
    cancel_requested: bool
    error: str | None
    result_commit: str | None

    @staticmethod
    def from_row(row: Any) -> QueuedRun:
        m = row._mapping
        return QueuedRun(**{k: m[k] for k in QueuedRun.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in QueuedRun.__dataclass_fields__}
        for key in ("created_at", "started_at", "ended_at"):
            data[key] = iso(data[key])
        return data


_GET = sa.select(t.runs).where(t.runs.c.id == sa.bindparam("id"))


HELD = "deployment:"
"""The key prefix of a limit given at enqueue time (never a plan's pipeline name)."""


def _running_of_pipeline() -> sa.ScalarSelect[int]:
    """How many runs of the candidate's project and pipeline are running."""
    other = t.runs.alias("other")
    return (
        sa.select(sa.func.count())
        .select_from(other)
        .where(
            (other.c.project == t.runs.c.project)
            & (other.c.pipeline == t.runs.c.pipeline)
            & (other.c.status == RunStatus.RUNNING)
        )
        .scalar_subquery()
    )


class RunQueue:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def enqueue(
        self,
        project: str,
        ref: str,
        commit: str,
        trigger: str,
        who: str,
        params: dict[str, Any] | None = None,
        status: RunStatus = RunStatus.QUEUED,
        error: str | None = None,
        limit: tuple[str, int] | None = None,
    ) -> str:
        """A new run; ``limit``: ``(KEY, N)``, at most N runs of the project with that
        key run at once (a deployment's ``max_parallel_executions``), kept whatever
        the run's plan says (see :meth:`admit`); KEY starts with :data:`HELD`."""
        run_id = secrets.token_hex(6)
        held = {}
        if limit is not None:
            assert limit[0].startswith(HELD)
            held = {"pipeline": limit[0][:200], "concurrency": max(1, limit[1])}
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    project=project,
                    status=status,
                    ref=ref,
                    commit=commit,
                    trigger=trigger[:32],
                    who=who[:100],
                    params=params or {},
                    created_at=now,
                    ended_at=None if status == RunStatus.QUEUED else now,
                    cancel_requested=False,
                    error=error,
                    **held,
                )
            )
        return run_id

    def claim(self, worker: str) -> QueuedRun | None:
        """Take the oldest queued run for this worker, or None when there is none; a run
        whose pipeline has ``concurrency`` runs running waits (see :meth:`admit`)."""
        pick = (
            sa.select(t.runs.c.id)
            .where(t.runs.c.status == RunStatus.QUEUED)
            .where(
                sa.or_(
                    t.runs.c.concurrency.is_(None), _running_of_pipeline() < t.runs.c.concurrency
                )
            )
            .order_by(t.runs.c.created_at)
            .limit(8)
        )
        with self.engine.connect() as conn:
            candidates = [r[0] for r in conn.execute(pick)]
        for run_id in candidates:
            now = time.time()
            with self.engine.begin() as conn:
                changed = conn.execute(
                    t.runs.update()
                    .where((t.runs.c.id == run_id) & (t.runs.c.status == RunStatus.QUEUED))
                    .values(
                        status=RunStatus.RUNNING, worker=worker, started_at=now, heartbeat_at=now
                    )
                ).rowcount
            if changed == 1:
                return self.get(run_id)
        return None

    def admit(self, run_id: str, pipeline: str, limit: int | None) -> bool:
        """A claimed run, once its plan is known: record its pipeline and limit, and keep
        it running unless ``limit`` runs of that pipeline already are; then it goes back
        to the queue (in its place: its ``created_at`` is kept) and False is returned.
        A run queued with its own ``limit`` keeps it (and its key) whatever the plan says.
        On PostgreSQL an advisory lock per project and pipeline makes two workers admit
        one at a time; SQLite's writer lock does the same."""
        with self.engine.begin() as conn:
            found = sa.select(t.runs.c.project, t.runs.c.pipeline, t.runs.c.concurrency)
            row = conn.execute(found.where(t.runs.c.id == run_id)).first()
            if row is None:
                return False
            project = str(row[0])
            if row[1] is not None and str(row[1]).startswith(HELD):
                pipeline, limit = str(row[1]), row[2]  # the limit it was queued with
            if conn.dialect.name == "postgresql":
                key = int.from_bytes(
                    hashlib.blake2b(f"{project}\0{pipeline}".encode(), digest_size=8).digest(),
                    "big",
                    signed=True,
                )
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            # this transaction writes first, so SQLite holds its writer lock from here
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(pipeline=pipeline[:200], concurrency=limit)
            )
            if limit is None:
                return True
            others = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.runs)
                .where(
                    (t.runs.c.project == project)
                    & (t.runs.c.pipeline == pipeline[:200])
                    & (t.runs.c.status == RunStatus.RUNNING)
                    & (t.runs.c.id != run_id)
                )
            ).scalar_one()
            if others < limit:
                return True
            conn.execute(
                t.runs.update()
                .where((t.runs.c.id == run_id) & (t.runs.c.status == RunStatus.RUNNING))
                .values(status=RunStatus.QUEUED, worker=None, started_at=None, heartbeat_at=None)
            )
            return False

    def get(self, run_id: str) -> QueuedRun | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"id": run_id}).first()
        return None if row is None else QueuedRun.from_row(row)

    def find(self, project: str, prefix: str | None, limit: int = 6) -> list[str]:
        """Ids of the project's runs that start with ``prefix`` (None: any), newest first."""
        query = sa.select(t.runs.c.id).where(t.runs.c.project == project)
        if prefix is not None:
            query = query.where(t.runs.c.id.startswith(prefix, autoescape=True))
        query = query.order_by(t.runs.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [str(row[0]) for row in conn.execute(query)]

    def for_project(
        self, project: str, limit: int = 50, status: RunStatus | None = None
    ) -> list[QueuedRun]:
        query = sa.select(t.runs).where(t.runs.c.project == project)
        if status:
            query = query.where(t.runs.c.status == status)
        query = query.order_by(t.runs.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [QueuedRun.from_row(r) for r in conn.execute(query)]

    def page(
        self,
        project: str,
        limit: int,
        status: RunStatus | None = None,
        cursor: str | None = None,
        ref: str | None = None,
        trigger: str | None = None,
        pipeline: str | None = None,
    ) -> tuple[list[QueuedRun], int, str | None] | None:
        """A page of the project's runs, newest first, after the run ``cursor`` (keyset:
        the index on project and time, never an offset): the runs, how many match in
        all, and the cursor of the next page; None for an unknown cursor. ``ref``,
        ``trigger`` and ``pipeline`` (the name in the run's record: a queued run has
        none yet) filter by equality."""
        runs, where = t.runs.c, t.runs.c.project == project
        if status:
            where &= runs.status == status
        if ref:
            where &= runs.ref == ref
        if trigger:
            where &= runs.trigger == trigger
        if pipeline:
            named = sa.select(records.runs.c.id).where(records.runs.c.pipeline == pipeline)
            where &= runs.id.in_(named)
        query = sa.select(t.runs).where(where)
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).where(where)).scalar_one())
            if cursor is not None:
                mine = (runs.id == cursor) & (runs.project == project)
                anchor = conn.execute(sa.select(runs.created_at).where(mine)).first()
                if anchor is None:
                    return None
                at = anchor[0]
                # the first term is a range on the index: a deep page starts at its place
                query = query.where(
                    (runs.created_at <= at) & ((runs.created_at < at) | (runs.id < cursor))
                )
            query = query.order_by(runs.created_at.desc(), runs.id.desc()).limit(limit + 1)
            found = [QueuedRun.from_row(r) for r in conn.execute(query)]
        more = len(found) > limit
        return found[:limit], total, (found[limit - 1].id if more else None)

    def load(self) -> dict[str, Any]:
        """Runs per status, and the workers with a running run (for operators)."""
        with self.engine.connect() as conn:
            counts = conn.execute(
                sa.select(t.runs.c.status, sa.func.count()).group_by(t.runs.c.status)
            )
            by_status = {str(status): int(count) for status, count in counts}
            busy = conn.execute(
                sa.select(t.runs.c.worker, t.runs.c.id).where(t.runs.c.status == RunStatus.RUNNING)
            )
            workers = {str(worker): str(run_id) for worker, run_id in busy}
        return {"runs": by_status, "busy_workers": workers}

    def heartbeat(self, run_ids: list[str]) -> None:
        if not run_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id.in_(run_ids) & (t.runs.c.status == RunStatus.RUNNING))
                .values(heartbeat_at=time.time())
            )

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        error: str | None = None,
        result_commit: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(
                    status=status, error=error, result_commit=result_commit, ended_at=time.time()
                )
            )

    def delete(self, run_ids: list[str]) -> None:
        """Forget finished runs (retention); their records are deleted before this."""
        if not run_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.delete().where(t.runs.c.id.in_(run_ids) & t.runs.c.status.in_(FINISHED))
            )

    def request_cancel(self, run_id: str) -> RunStatus | None:
        """Cancel a queued run at once; ask the worker of a running one. Returns the status
        (None: no such run)."""
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.update()
                .where((t.runs.c.id == run_id) & (t.runs.c.status == RunStatus.QUEUED))
                .values(
                    status=RunStatus.CANCELLED, ended_at=time.time(), error="cancelled while queued"
                )
            )
            conn.execute(
                t.runs.update()
                .where((t.runs.c.id == run_id) & (t.runs.c.status == RunStatus.RUNNING))
                .values(cancel_requested=True)
            )
            row = conn.execute(sa.select(t.runs.c.status).where(t.runs.c.id == run_id)).first()
        return None if row is None else RunStatus(row[0])

    def cancel_requested(self, run_ids: list[str]) -> set[str]:
        if not run_ids:
            return set()
        query = sa.select(t.runs.c.id).where(
            t.runs.c.id.in_(run_ids) & t.runs.c.cancel_requested.is_(True)
        )
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(query)}

    def recover_stale(self, stale_after: float = STALE_AFTER) -> list[str]:
        """Mark running runs whose worker stopped beating as interrupted."""
        limit = time.time() - stale_after
        stale = (t.runs.c.status == RunStatus.RUNNING) & (t.runs.c.heartbeat_at < limit)
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.select(t.runs.c.id).where(stale))]
            if ids:
                conn.execute(
                    t.runs.update()
                    .where(t.runs.c.id.in_(ids) & (t.runs.c.status == RunStatus.RUNNING))
                    .values(
                        status=RunStatus.INTERRUPTED,
                        ended_at=time.time(),
                        error="interrupted: its worker stopped; resume it to run it again",
                    )
                )
        return ids

    def requeue_worker(self, worker: str) -> None:
        """A worker starting under a name finds its own leftovers: they were interrupted."""
        with self.engine.begin() as conn:
            conn.execute(
                t.runs.update()
                .where((t.runs.c.worker == worker) & (t.runs.c.status == RunStatus.RUNNING))
                .values(
                    status=RunStatus.INTERRUPTED,
                    ended_at=time.time(),
                    error="interrupted: its worker restarted; resume it to run it again",
                )
            )
