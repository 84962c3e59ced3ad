"""Deployment rows and their executions: the one module that reads and writes them."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.metadata.records import iso
from conveyor.server.db import tables as t
from conveyor.server.db.recent import Recent
from conveyor.server.deployments.journal import Journal
from conveyor.server.deployments.model import DeploymentSettings

FINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class DeploymentRecord:
    project: str
    name: str
    kind: str
    mode: str
    ref: str
    follow: bool
    commit: str
    settings: DeploymentSettings
    enabled: bool
    token_digest: str | None
    next_at: float | None
    created_by: str
    created_at: float
    updated_at: float

    @staticmethod
    def from_row(row: Any) -> DeploymentRecord:
        m = dict(row._mapping)
        m["settings"] = DeploymentSettings.model_validate(m["settings"])
        return DeploymentRecord(**{k: m[k] for k in DeploymentRecord.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "name": self.name,
            "kind": self.kind,
            "mode": self.mode,
            "ref": self.ref,
            "follow": self.follow,
            "commit": self.commit,
            "settings": self.settings.model_dump(mode="json"),
            "enabled": self.enabled,
            "has_token": self.token_digest is not None,
            "next_at": iso(self.next_at),
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


_GET = sa.select(t.deployments).where(
    (t.deployments.c.project == sa.bindparam("p")) & (t.deployments.c.name == sa.bindparam("n"))
)
_RECORD = t.deployment_executions.insert()
"""Statements built once: a call's reads and writes skip SQLAlchemy's construction."""


_journals: dict[int, Journal] = {}
_journals_lock = threading.Lock()


def _journal(engine: sa.Engine) -> Journal:
    """The one journal of this process for ``engine`` (its callers group their commits)."""
    with _journals_lock:
        found = _journals.get(id(engine))
        if found is None or found.engine is not engine:
            found = _journals[id(engine)] = Journal(engine, _RECORD)
        return found


_recent: Recent[DeploymentRecord | None] = Recent()
"""Records read in this process, forgotten at each write (``recent.py``): an endpoint
call reads its deployment's record without a query."""


def _key(project: str, name: str) -> Any:
    return (t.deployments.c.project == project) & (t.deployments.c.name == name)


class Deployments:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, project: str, name: str) -> DeploymentRecord | None:
        """As read in the last second, unless this process changed a deployment since."""
        return _recent.get((self.engine.url, project, name), lambda: self._get(project, name))

    def _get(self, project: str, name: str) -> DeploymentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"p": project, "n": name}).first()
        return None if row is None else DeploymentRecord.from_row(row)

    def of_project(self, project: str) -> list[DeploymentRecord]:
        query = (
            sa.select(t.deployments)
            .where(t.deployments.c.project == project)
            .order_by(t.deployments.c.name)
        )
        with self.engine.connect() as conn:
            return [DeploymentRecord.from_row(r) for r in conn.execute(query)]

    def insert(self, record: DeploymentRecord) -> bool:
        """False when the project already has a deployment of that name."""
        values = {k: getattr(record, k) for k in DeploymentRecord.__dataclass_fields__}
        values["settings"] = record.settings.model_dump(mode="json")
        try:
            with self.engine.begin() as conn:
                conn.execute(t.deployments.insert().values(values))
        except sa.exc.IntegrityError:
            return False
        _recent.forget()  # an earlier "no such deployment"
        return True

    def change(self, project: str, name: str, **values: Any) -> bool:
        if "settings" in values:
            values["settings"] = values["settings"].model_dump(mode="json")
        with self.engine.begin() as conn:
            done = conn.execute(
                t.deployments.update()
                .where(_key(project, name))
                .values(updated_at=time.time(), **values)
            ).rowcount
        _recent.forget()  # a rotated token is refused from the next call on
        return bool(done)

    def delete(self, project: str, name: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(t.deployments.delete().where(_key(project, name))).rowcount
        _recent.forget()
        return bool(done)

    def following(self, project: str, ref: str) -> list[DeploymentRecord]:
        query = sa.select(t.deployments).where(
            (t.deployments.c.project == project)
            & (t.deployments.c.ref == ref)
            & t.deployments.c.follow.is_(True)
        )
        with self.engine.connect() as conn:
            return [DeploymentRecord.from_row(r) for r in conn.execute(query)]

    def due(self, now: float) -> list[DeploymentRecord]:
        query = sa.select(t.deployments).where(
            (t.deployments.c.next_at <= now) & t.deployments.c.enabled.is_(True)
        )
        with self.engine.connect() as conn:
            return [DeploymentRecord.from_row(r) for r in conn.execute(query)]

    def advance(self, project: str, name: str, seen: float, following: float) -> bool:
        """Move a due periodic deployment on; False when another process did it first."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                t.deployments.update()
                .where(_key(project, name) & (t.deployments.c.next_at == seen))
                .values(next_at=following)
            ).rowcount
        _recent.forget()
        return bool(taken == 1)

    # executions

    def start(
        self, record: DeploymentRecord, caller: str, inputs: dict[str, Any], run_id: str | None
    ) -> str:
        execution_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(
                t.deployment_executions.insert().values(
                    id=execution_id,
                    project=record.project,
                    deployment=record.name,
                    commit=record.commit,
                    status="running",
                    caller=caller[:100],
                    run_id=run_id,
                    inputs=inputs,
                    created_at=time.time(),
                )
            )
        return execution_id

    def record(
        self,
        record: DeploymentRecord,
        caller: str,
        inputs: dict[str, Any],
        started_at: float,
        status: str,
        outputs: dict[str, Any] | None,
        logs: str | None,
        error: str | None,
        execution_id: str | None = None,
    ) -> str:
        """A finished execution, committed before this returns; calls that end together
        share a transaction (``journal.py``: group commit). ``execution_id``: one chosen
        before (its file outputs' links name it)."""
        execution_id = execution_id or secrets.token_hex(8)
        row = {
            "id": execution_id,
            "project": record.project,
            "deployment": record.name,
            "commit": record.commit,
            "status": status,
            "caller": caller[:100],
            "run_id": None,
            "inputs": inputs,
            "outputs": outputs,
            "logs": logs,
            "error": error,
            "created_at": started_at,
            "ended_at": time.time(),
        }
        _journal(self.engine).write(row)
        return execution_id

    def finish(
        self,
        execution_id: str,
        status: str,
        outputs: dict[str, Any] | None,
        logs: str | None,
        error: str | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.deployment_executions.update()
                .where(t.deployment_executions.c.id == execution_id)
                .values(
                    status=status, outputs=outputs, logs=logs, error=error, ended_at=time.time()
                )
            )

    def stored_files(self) -> set[str]:
        """The digests of every execution's file outputs kept in the content store (a warm
        call's files): ``conveyor server gc`` keeps them while their execution is kept."""
        e = t.deployment_executions
        query = sa.select(e.c.outputs).where(e.c.outputs.is_not(None))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for (outputs,) in conn.execute(query):
                for value in (outputs or {}).values() if isinstance(outputs, dict) else ():
                    digest = value.get("digest") if isinstance(value, dict) else None
                    if isinstance(digest, str) and value.get("kind") == "file":
                        found.add(digest)
        return found

    def running(self) -> list[dict[str, Any]]:
        """Every execution still marked running (raw times): at a server's start, those a
        stopped server left."""
        e = t.deployment_executions
        query = sa.select(e.c.id, e.c.project, e.c.deployment, e.c.run_id, e.c.created_at).where(
            e.c.status == "running"
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def execution(self, project: str, execution_id: str) -> dict[str, Any] | None:
        e = t.deployment_executions
        query = sa.select(e).where((e.c.id == execution_id) & (e.c.project == project))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else execution_json(row)

    def of_run(self, project: str, run_id: str) -> dict[str, Any] | None:
        """The execution a run is (a Craft deployment's call is a run), if any."""
        e = t.deployment_executions
        query = sa.select(e).where((e.c.project == project) & (e.c.run_id == run_id)).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else execution_json(row)

    def executions(self, project: str, name: str, limit: int) -> list[dict[str, Any]]:
        e = t.deployment_executions
        query = (
            sa.select(e)
            .where((e.c.project == project) & (e.c.deployment == name))
            .order_by(e.c.created_at.desc(), e.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [execution_json(r) for r in conn.execute(query)]

    def last_calls(self, project: str) -> dict[str, dict[str, Any]]:
        """Each deployment's newest execution (its time and status) and count: one query."""
        e = t.deployment_executions
        newest = (
            sa.select(
                e.c.deployment,
                sa.func.max(e.c.created_at).label("at"),
                sa.func.count().label("calls"),
            )
            .where(e.c.project == project)
            .group_by(e.c.deployment)
            .subquery()
        )
        query = sa.select(newest.c.deployment, newest.c.at, newest.c.calls, e.c.status).join(
            e,
            (e.c.project == project)
            & (e.c.deployment == newest.c.deployment)
            & (e.c.created_at == newest.c.at),
        )
        with self.engine.connect() as conn:
            return {
                str(r.deployment): {"at": r.at, "status": r.status, "calls": int(r.calls)}
                for r in conn.execute(query)
            }

    def count(self, project: str, name: str) -> dict[str, int]:
        e = t.deployment_executions
        query = (
            sa.select(e.c.status, sa.func.count())
            .where((e.c.project == project) & (e.c.deployment == name))
            .group_by(e.c.status)
        )
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}


def execution_json(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    ended, created = m["ended_at"], m["created_at"]
    m["duration"] = round(ended - created, 6) if ended is not None else None
    m["created_at"], m["ended_at"] = iso(created), iso(ended)
    return m
