"""Who calls the Craft API: the SDK token is one of the server's API tokens; the
refresh exchange turns it into a short-lived access token (``tokens.py``) bound to one
project. The token is signed (a forgery costs no query) and stored hashed in the server
database (``db/crafttokens.py``), so every HTTP process and a restarted server accept it,
deleting its API token revokes it, and the caller's role is the one held now."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from conveyor.server.auth import server, token_of
from conveyor.server.craft.errors import CraftError
from conveyor.server.craft.tokens import PURPOSE, TTL, Claims, mint, verify
from conveyor.server.db.accounts import role_at_least
from conveyor.server.state import ServerState

REVOKED = (
    "this access token was revoked (its SDK token was deleted) or was not issued by this server"
)


@dataclass(frozen=True)
class CraftAccess:
    user: str
    project: str
    role: str


def refresh(state: ServerState, project: str, sdk_token: object) -> str:
    """An access token for the holder of an API token who is a member of ``project``."""
    if not isinstance(sdk_token, str) or not sdk_token or len(sdk_token) > 4096:
        raise CraftError(401, "Unauthorized", "send the SDK token as refresh_token")
    user, exists, role = state.db.accounts.access(sdk_token, project)
    if user is None:
        raise CraftError(401, "Unauthorized", "this SDK token is not an API token of this server")
    if not exists:
        raise CraftError(404, "NotFound", f"there is no project {project!r}")
    if role is None:
        raise CraftError(403, "Forbidden", f"you are not a member of the project {project!r}")
    issued = int(time.time())
    token = mint(state.keyring.derive(PURPOSE), user.name, project, role, now=issued)
    state.db.craft_tokens.store(token, sdk_token, project, issued + TTL)
    return token


def check(request: Request, project: str, needed: str) -> CraftAccess:
    token = token_of(request.headers.get("authorization"))
    if token is None:
        raise CraftError(401, "Unauthorized", "an access token is required (Bearer)")
    claims = verify(server(request).keyring.derive(PURPOSE), token)
    if not isinstance(claims, Claims):
        raise CraftError(401, "Unauthorized", claims)
    if claims.project != project:
        raise CraftError(
            403, "Forbidden", f"this access token is for another project, not {project!r}"
        )
    holder = server(request).db.craft_tokens.holder(token)
    if holder is None:
        raise CraftError(401, "Unauthorized", REVOKED)
    if holder.role is None:
        raise CraftError(403, "Forbidden", f"you are no longer a member of the project {project!r}")
    if not role_at_least(holder.role, needed):
        raise CraftError(
            403, "Forbidden", f"this needs the {needed} role on {project!r}; yours is {holder.role}"
        )
    return CraftAccess(holder.user, project, holder.role)


def viewer(request: Request, project: str) -> CraftAccess:
    return check(request, project, "viewer")


def member(request: Request, project: str) -> CraftAccess:
    return check(request, project, "member")


def lead(request: Request, project: str) -> CraftAccess:
    return check(request, project, "lead")


Viewer = Annotated[CraftAccess, Depends(viewer)]
Member = Annotated[CraftAccess, Depends(member)]
Lead = Annotated[CraftAccess, Depends(lead)]
