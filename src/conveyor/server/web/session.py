"""Signed-in browsers: the API token in an encrypted, expiring session cookie, and the
CSRF token every state-changing form carries.

The cookie is the server key's Fernet encryption of the API token and a random CSRF
token: the browser cannot read or forge it, every process of the server can open it,
and each request still checks the token and the role in the database (a revoked token
or membership is refused at once, exactly as by the API). The CSRF token lives inside
the cookie; a form proves it read a page of this site by sending it back.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response

from conveyor.server.auth import Access, access_of, server
from conveyor.server.db.accounts import User

COOKIE = "conveyor_session"
MAX_AGE = 12 * 3600  # seconds a sign-in lasts
MAX_COOKIE = 4096


class SignInNeeded(HTTPException):
    """No (valid) session: pages send the browser to the sign-in form."""

    def __init__(self) -> None:
        super().__init__(401, "sign in with an API token first")


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str


def is_local(request: Request) -> bool:
    """Served by ``conveyor ui``: no sign-in, no session, nothing to change."""
    from conveyor.server.web.source import source

    return source(request).local


def refuse_local(request: Request) -> None:
    """403 for a form (sign in or out, cancel, re-run) sent to ``conveyor ui``."""
    if is_local(request):
        raise HTTPException(403, "conveyor ui is read-only: use the CLI to change runs")


def open_session(request: Request) -> Session | None:
    """The request's session, or None (no cookie, tampered, expired or malformed; or
    ``conveyor ui``, which has none)."""
    from cryptography.fernet import InvalidToken

    if is_local(request):
        return None
    value = request.cookies.get(COOKIE)
    if not value or len(value) > MAX_COOKIE:
        return None
    try:
        data = json.loads(server(request).keyring.decrypt(value.encode(), ttl=MAX_AGE))
    except (InvalidToken, ValueError, UnicodeError):
        return None
    if not isinstance(data, dict):
        return None
    token, csrf = data.get("t"), data.get("c")
    if not isinstance(token, str) or not isinstance(csrf, str):
        return None
    return Session(token, csrf)


def start_session(request: Request, response: Response, token: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Secure when served over https
    (as the request came, or as the server's public URL says: behind a proxy)."""
    data = json.dumps({"t": token, "c": secrets.token_urlsafe(24)})
    value = server(request).keyring.encrypt(data).decode()
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure="https" in (request.url.scheme, server(request).config.base_url.split(":")[0]),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def signed_in(request: Request) -> tuple[Session, User]:
    """The session and its user (the token checked in the database), else SignInNeeded."""
    session = open_session(request)
    user = server(request).db.accounts.user_for_token(session.token) if session else None
    if session is None or user is None:
        raise SignInNeeded()
    return session, user


def page_access(request: Request, project: str, needed: str) -> tuple[Session | None, Access]:
    """The session and the caller's access to ``project``: the API's own check (or, for
    ``conveyor ui``, no session and the viewer's role on its one project)."""
    from conveyor.server.web.source import source

    if (local := source(request).open_access(project, needed)) is not None:
        return None, local
    session = open_session(request)
    if session is None:
        raise SignInNeeded()
    try:
        return session, access_of(server(request), session.token, project, needed)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise SignInNeeded() from None
        raise


def check_csrf(session: Session, sent: str | None) -> None:
    """403 unless the form sent the session's CSRF token."""
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, "this form is out of date or did not come from this site")


def check_origin(request: Request) -> None:
    """403 for a state-changing request whose Origin (when sent) is another site, and
    for every one sent to ``conveyor ui``."""
    refuse_local(request)
    origin = request.headers.get("origin")
    if origin is None:  # not every browser sends it; the CSRF token still guards
        return
    here = {f"{request.url.scheme}://{request.url.netloc}", server(request).config.base_url}
    if origin.rstrip("/") not in here:
        raise HTTPException(403, "this form was sent from another site")


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the body limit caps its size)."""
    from urllib.parse import parse_qsl

    kind = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if not body and not kind:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send this form as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode(), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "this form is not valid form data") from None
    return dict(pairs)
