"""Who calls the Craft API: the SDK token is one of the server's API tokens; the
refresh exchange turns it into a short-lived access token (``tokens.py``) bound to one
project and the caller's role there, checked on every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from conveyor.server.auth import server, token_of
from conveyor.server.craft.errors import CraftError
from conveyor.server.craft.tokens import PURPOSE, Claims, mint, verify
from conveyor.server.db.accounts import role_at_least
from conveyor.server.state import ServerState


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
    return mint(state.keyring.derive(PURPOSE), user.name, project, role)


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
    if not role_at_least(claims.role, needed):
        raise CraftError(
            403, "Forbidden", f"this needs the {needed} role on {project!r}; yours is {claims.role}"
        )
    return CraftAccess(claims.user, project, claims.role)


def viewer(request: Request, project: str) -> CraftAccess:
    return check(request, project, "viewer")


def member(request: Request, project: str) -> CraftAccess:
    return check(request, project, "member")


def lead(request: Request, project: str) -> CraftAccess:
    return check(request, project, "lead")


Viewer = Annotated[CraftAccess, Depends(viewer)]
Member = Annotated[CraftAccess, Depends(member)]
Lead = Annotated[CraftAccess, Depends(lead)]
