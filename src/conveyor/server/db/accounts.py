"""Projects, users, API tokens (only their SHA-256 is stored) and memberships."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.domain.states import RunStatus
from conveyor.errors import NotFoundError, UsageError
from conveyor.server.config import check_project_name, check_user_name
from conveyor.server.db import tables as t
from conveyor.server.db.recent import Recent

ROLES = ("viewer", "member", "lead")
"""Each role can do what the ones before it can."""
TOKEN_PREFIX = "cvy_"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    admin: bool


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


# built once: constructing this join costs more than running it
_ACCESS = (
    sa.select(t.users, t.projects.c.name.label("project"), t.members.c.role)
    .select_from(t.tokens)
    .join(t.users, t.users.c.id == t.tokens.c.user_id)
    .outerjoin(t.projects, t.projects.c.name == sa.bindparam("project"))
    .outerjoin(
        t.members,
        (t.members.c.project == sa.bindparam("project")) & (t.members.c.user_id == t.users.c.id),
    )
    .where(t.tokens.c.digest == sa.bindparam("digest"))
)
_recent: Recent[tuple[User | None, bool, str | None]] = Recent()
"""``access`` answers of this process, whichever ``Accounts`` wrote (``recent.py``)."""


class ProjectBusy(UsageError):
    """A project cannot be deleted now: something of it runs (the caller waits, or ends it)."""


def busy(conn: sa.Connection, project: str) -> str:
    """What of ``project`` still runs or holds processes ("" when nothing)."""
    unfinished = [s for s in RunStatus if not s.finished]
    counts = {
        "run(s) queued or running": sa.select(sa.func.count())
        .select_from(t.runs)
        .where((t.runs.c.project == project) & t.runs.c.status.in_(unfinished)),
        "Pachyderm trigger(s) running": sa.select(sa.func.count())
        .select_from(t.pachyderm_triggers)
        .where(
            (t.pachyderm_triggers.c.project == project)
            & (t.pachyderm_triggers.c.status == "running")
        ),
        "deployment(s), to delete first": sa.select(sa.func.count())
        .select_from(t.deployments)
        .where(t.deployments.c.project == project),
    }
    found = [f"{n} {what}" for what, query in counts.items() if (n := conn.execute(query).scalar())]
    return ", ".join(found)


def _remove_rows(conn: sa.Connection, project: str) -> dict[str, int]:
    """Delete every row of every table with a ``project`` column naming ``project``;
    how many went, by table."""
    removed = {}
    for table in reversed(t.metadata.sorted_tables):  # dependants first
        if "project" in table.c:
            removed[table.name] = conn.execute(
                table.delete().where(table.c.project == project)
            ).rowcount
    return removed


class Accounts:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- projects -------------------------------------------------------------
    def add_project(self, name: str) -> None:
        check_project_name(name)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.projects.c.name).where(t.projects.c.name == name)).first():
                raise UsageError(f"project {name!r} exists already")
            _remove_rows(conn, name)  # a deleted project's, written while it was deleted
            conn.execute(t.projects.insert().values(name=name, created_at=time.time(), settings={}))
        _recent.forget()

    def orphan_runs(self, name: str) -> list[str]:
        """Run ids queued under ``name`` while no project has that name (a push that
        landed while the project was deleted): not a project's, to forget."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(t.projects.c.name).where(t.projects.c.name == name)).first():
                return []
            return list(
                conn.execute(sa.select(t.runs.c.id).where(t.runs.c.project == name)).scalars()
            )

    def delete_project(self, name: str) -> dict[str, int]:
        """Forget the project: every row of every table with a ``project`` column, in one
        transaction; rows removed by table. NotFoundError when there is no such project;
        ProjectBusy (nothing removed) while one of its runs or Pachyderm triggers is
        queued or running, or while it has deployments (they hold processes)."""
        check_project_name(name)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.projects.c.name).where(t.projects.c.name == name)).first():
                running = busy(conn, name)
                if running:
                    raise ProjectBusy(f"project {name} is in use: {running}")
                removed = _remove_rows(conn, name)
                conn.execute(t.projects.delete().where(t.projects.c.name == name))
            else:
                raise NotFoundError(f"no project {name!r}")
        _recent.forget()
        return {k: v for k, v in removed.items() if v}

    def project(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def settings(self, name: str) -> dict[str, Any]:
        """A copy of the settings the project's lead chose ({} for none or no project)."""
        row = self.project(name)
        return dict((row or {}).get("settings") or {})

    def projects(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.projects.c.name).order_by(t.projects.c.name))
            return [r[0] for r in rows]

    def update_project(self, name: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.projects.update().where(t.projects.c.name == name).values(values))

    # -- users and tokens -----------------------------------------------------
    def add_user(self, name: str, admin: bool = False) -> tuple[User, str]:
        """Create a user; returns it with its first token (shown once, stored hashed)."""
        check_user_name(name)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).first():
                raise UsageError(f"user {name!r} exists already")
            result = conn.execute(
                t.users.insert().values(name=name, admin=admin, created_at=time.time())
            )
            key = result.inserted_primary_key
            assert key is not None
            user = User(int(key[0]), name, admin)
            token = self._new_token(conn, user.id)
        _recent.forget()
        return user, token

    def new_token(self, name: str) -> str:
        user = self.user(name)
        with self.engine.begin() as conn:
            token = self._new_token(conn, user.id)
        _recent.forget()
        return token

    def _new_token(self, conn: sa.Connection, user_id: int) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        conn.execute(
            t.tokens.insert().values(
                digest=token_digest(token), user_id=user_id, created_at=time.time()
            )
        )
        return token

    def revoke_tokens(self, name: str) -> int:
        """Delete every token of a user; returns how many there were."""
        user = self.user(name)
        mine = sa.select(t.tokens.c.digest).where(t.tokens.c.user_id == user.id)
        with self.engine.begin() as conn:
            # the Craft access tokens they were exchanged for go with them
            conn.execute(t.craft_tokens.delete().where(t.craft_tokens.c.parent.in_(mine)))
            count = int(
                conn.execute(t.tokens.delete().where(t.tokens.c.user_id == user.id)).rowcount
            )
        _recent.forget()
        return count

    def user(self, name: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"there is no user {name!r}")
        return User(row.id, row.name, row.admin)

    def user_for_token(self, token: str) -> User | None:
        query = (
            sa.select(t.users)
            .join(t.tokens, t.tokens.c.user_id == t.users.c.id)
            .where(t.tokens.c.digest == token_digest(token))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else User(row.id, row.name, row.admin)

    def access(self, token: str, project: str) -> tuple[User | None, bool, str | None]:
        """In one query: the token's user, whether the project exists, the user's role
        (as read in the last second, unless this process changed accounts since)."""
        digest = token_digest(token)  # the token itself is kept nowhere
        key = (self.engine.url, digest, project)
        return _recent.get(key, lambda: self._access(digest, project))

    def _access(self, digest: str, project: str) -> tuple[User | None, bool, str | None]:
        with self.engine.connect() as conn:
            row = conn.execute(_ACCESS, {"project": project, "digest": digest}).first()
        if row is None:
            return None, False, None
        user = User(row.id, row.name, row.admin)
        exists = row.project is not None
        role = "lead" if user.admin and exists else row.role
        return user, exists, role

    # -- memberships ----------------------------------------------------------
    def grant(self, project: str, user_name: str, role: str) -> None:
        if role not in ROLES:
            raise UsageError(f"{role!r} is not a role; use one of {', '.join(ROLES)}")
        if self.project(project) is None:
            raise NotFoundError(f"there is no project {project!r}")
        user = self.user(user_name)
        key = (t.members.c.project == project) & (t.members.c.user_id == user.id)
        with self.engine.begin() as conn:
            conn.execute(t.members.delete().where(key))
            conn.execute(t.members.insert().values(project=project, user_id=user.id, role=role))
        _recent.forget()

    def revoke(self, project: str, user_name: str) -> bool:
        user = self.user(user_name)
        key = (t.members.c.project == project) & (t.members.c.user_id == user.id)
        with self.engine.begin() as conn:
            done = bool(conn.execute(t.members.delete().where(key)).rowcount)
        _recent.forget()
        return done

    def role(self, user: User, project: str) -> str | None:
        if user.admin:
            return "lead"
        key = (t.members.c.project == project) & (t.members.c.user_id == user.id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.members.c.role).where(key)).first()
        return None if row is None else str(row[0])

    def members(self, project: str) -> list[dict[str, str]]:
        query = (
            sa.select(t.users.c.name, t.members.c.role)
            .join(t.users, t.users.c.id == t.members.c.user_id)
            .where(t.members.c.project == project)
            .order_by(t.users.c.name)
        )
        with self.engine.connect() as conn:
            return [{"user": r.name, "role": r.role} for r in conn.execute(query)]

    def visible_projects(self, user: User) -> list[str]:
        if user.admin:
            return self.projects()
        query = sa.select(t.members.c.project).where(t.members.c.user_id == user.id)
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(query))
