"""The Craft API's access tokens at rest: only their SHA-256, the project, the expiry and
the digest of the API token they were exchanged for. Every HTTP process (and the server
after a restart) reads the same rows; deleting the API token revokes its access tokens,
and a membership change applies to them at once (the role is read on each request)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from conveyor.server.db import tables as t
from conveyor.server.db.accounts import token_digest


@dataclass(frozen=True)
class Holder:
    user: str
    role: str | None
    """The holder's role in the token's project now (``None``: no longer a member)."""


# built once: constructing this join costs more than running it
_HOLDER = (
    sa.select(t.users.c.name, t.users.c.admin, t.members.c.role)
    .select_from(t.craft_tokens)
    .join(t.tokens, t.tokens.c.digest == t.craft_tokens.c.parent)
    .join(t.users, t.users.c.id == t.tokens.c.user_id)
    .outerjoin(
        t.members,
        (t.members.c.project == t.craft_tokens.c.project) & (t.members.c.user_id == t.users.c.id),
    )
    .where(t.craft_tokens.c.digest == sa.bindparam("digest"))
    .where(t.craft_tokens.c.expires_at > sa.bindparam("now"))
)


class CraftTokens:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def store(self, access_token: str, api_token: str, project: str, expires: float) -> None:
        """Keep an access token; the expired ones are dropped in the same transaction."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(t.craft_tokens.delete().where(t.craft_tokens.c.expires_at <= now))
            conn.execute(
                t.craft_tokens.insert().values(
                    digest=token_digest(access_token),
                    parent=token_digest(api_token),
                    project=project,
                    expires_at=expires,
                    created_at=now,
                )
            )

    def holder(self, access_token: str, now: float | None = None) -> Holder | None:
        """Who holds a live access token, or ``None`` (never issued, expired, revoked)."""
        given = {"digest": token_digest(access_token), "now": time.time() if now is None else now}
        with self.engine.connect() as conn:
            row = conn.execute(_HOLDER, given).first()
        if row is None:
            return None
        return Holder(str(row.name), "lead" if row.admin else row.role)
