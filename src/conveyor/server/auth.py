"""Who is calling, and may they? API tokens (Bearer, or HTTP basic password for git)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import HTTPException, Request

from conveyor.server.db.accounts import User, role_at_least
from conveyor.server.state import ServerState


@dataclass(frozen=True)
class Access:
    user: User
    project: str
    role: str


def server(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


async def server_state(request: Request) -> ServerState:
    """The same as ``server``, for ``Depends``: async, so it costs no thread hop."""
    return server(request)


def token_of(header: str | None) -> str | None:
    """The API token in an ``Authorization`` header (Bearer, or basic auth's password)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def authenticate(request: Request, realm: str = "Bearer") -> User:
    token = token_of(request.headers.get("authorization"))
    user = server(request).db.accounts.user_for_token(token) if token else None
    if user is None:
        raise _unauthenticated(token, realm)
    return user


def _unauthenticated(token: str | None, realm: str) -> HTTPException:
    return HTTPException(
        401,
        "an API token is required: send `Authorization: Bearer TOKEN`"
        if token is None
        else "this API token is not valid",
        headers={"WWW-Authenticate": f'{realm} realm="conveyor"'},
    )


def current_user(request: Request) -> User:
    return authenticate(request)


def authorize(request: Request, project: str, needed: str, realm: str = "Bearer") -> Access:
    """The caller's access to ``project``: 401 without a valid token, 404 for an unknown
    project, 403 below the ``needed`` role."""
    token = token_of(request.headers.get("authorization"))
    return access_of(server(request), token, project, needed, realm)


def access_of(
    state: ServerState, token: str | None, project: str, needed: str, realm: str = "Bearer"
) -> Access:
    """The one access check of the API and the web pages (the page's token comes from
    its session): 401, 404 or 403 as ``authorize`` says."""
    user, exists, role = state.db.accounts.access(token, project) if token else (None, False, None)
    if user is None:
        raise _unauthenticated(token, realm)
    if not exists:
        raise HTTPException(404, f"there is no project {project!r}")
    if not role_at_least(role, needed):
        have = f"your role is {role}" if role else "you are not a member"
        raise HTTPException(403, f"this needs the {needed} role on {project!r}; {have}")
    assert role is not None
    return Access(user, project, role)


def viewer(request: Request, project: str) -> Access:
    return authorize(request, project, "viewer")


def member(request: Request, project: str) -> Access:
    return authorize(request, project, "member")


def lead(request: Request, project: str) -> Access:
    return authorize(request, project, "lead")
