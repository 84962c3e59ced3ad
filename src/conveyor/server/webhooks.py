"""Webhooks from GitHub (HMAC-SHA256 signature) and GitLab (shared token).

The project lead sets a webhook secret and, for commits that were not pushed to this
server, a ``mirror`` URL the server fetches from. A call whose signature or token does
not verify is refused (401) and logged; nothing is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConveyorError, UsageError
from conveyor.server.auth import server
from conveyor.server.gitrepo import check_ref, resolve
from conveyor.server.mirrors import fetch_mirror
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate, queue_updates

router = APIRouter(prefix="/hooks", tags=["webhooks"])
log = logging.getLogger("conveyor.server")
MAX_PAYLOAD = 5 * 1024 * 1024
REFUSED = "webhook refused: the signature does not match the project's webhook secret"


def _secret(state: ServerState, project: str) -> str | None:
    """The project's webhook secret; None for an unknown project too (the caller answers
    both alike, so the route does not tell which project names exist)."""
    try:
        row = state.db.accounts.project(project)
    except ConveyorError:  # not a valid project name
        row = None
    if row is None:
        return None
    encrypted = row.get("webhook_secret")
    return state.keyring.decrypt(bytes(encrypted)) if encrypted else None


async def _payload(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_PAYLOAD:
        raise HTTPException(413, "the webhook payload is too large")
    return body


def _refuse(request: Request, project: str, why: str) -> HTTPException:
    """401 with one answer for every reason (the log keeps the reason)."""
    client = request.client.host if request.client else "?"
    name = "".join(c if c.isprintable() else "?" for c in project[:100])
    log.warning("refused a webhook for %s from %s: %s", name, client, why)
    return HTTPException(401, REFUSED)


@router.post("/github/{project}")
async def github(request: Request, project: str) -> dict[str, Any]:
    """GitHub push and tag events, verified with X-Hub-Signature-256."""
    state = server(request)
    body = await _payload(request)
    secret = await run_in_threadpool(_secret, state, project)
    if secret is None:
        raise _refuse(request, project, "no such project, or it has no webhook secret set")
    given = request.headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _refuse(request, project, "the X-Hub-Signature-256 signature does not match")
    event = request.headers.get("x-github-event", "")
    if event == "ping":
        return {"ok": True, "runs": []}
    if event != "push":
        return {"ok": True, "ignored": f"event {event!r}", "runs": []}
    return await _push(state, project, body, "webhook:github")


@router.post("/gitlab/{project}")
async def gitlab(request: Request, project: str) -> dict[str, Any]:
    """GitLab push and tag push events, verified with X-Gitlab-Token."""
    state = server(request)
    body = await _payload(request)
    secret = await run_in_threadpool(_secret, state, project)
    if secret is None:
        raise _refuse(request, project, "no such project, or it has no webhook secret set")
    given = request.headers.get("x-gitlab-token", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise _refuse(request, project, "the X-Gitlab-Token does not match")
    event = request.headers.get("x-gitlab-event", "")
    if event not in ("Push Hook", "Tag Push Hook"):
        return {"ok": True, "ignored": f"event {event!r}", "runs": []}
    return await _push(state, project, body, "webhook:gitlab")


async def _push(state: ServerState, project: str, body: bytes, trigger: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
        ref, after = str(data["ref"]), str(data.get("checkout_sha") or data["after"])
        user = str((data.get("pusher") or {}).get("name") or data.get("user_username") or trigger)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HTTPException(400, f"the payload is not a push event: {exc}") from exc
    try:
        await run_in_threadpool(_bring_commit, state, project, ref, after)
        lines = await run_in_threadpool(
            queue_updates, state, project, [RefUpdate("", after, ref)], user, trigger
        )
    except ConveyorError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {"ok": True, "messages": lines}


def _bring_commit(state: ServerState, project: str, ref: str, commit: str) -> None:
    """Make ``commit`` present in the project's repository (fetching from the mirror)."""
    repo = state.config.repo_dir(project)
    if len(commit) != 40 or not all(c in "0123456789abcdef" for c in commit):
        raise HTTPException(400, f"{commit[:100]!r} is not a commit id")
    try:
        check_ref(ref)
    except UsageError as exc:
        raise HTTPException(400, str(exc)) from exc
    if resolve(repo, commit) is None:
        row = state.db.accounts.project(project) or {}
        mirror = (row.get("settings") or {}).get("mirror")
        if not mirror:
            raise HTTPException(
                422, f"commit {commit[:12]} is not on the server and the project has no mirror"
            )
        try:
            fetch_mirror(repo, mirror, ref, state.config.data, state.config.mirror_roots)
        except UsageError as exc:  # the stored mirror is checked again: links move
            raise HTTPException(422, str(exc)) from exc
        if resolve(repo, commit) is None:
            raise HTTPException(422, f"the mirror does not have commit {commit[:12]} at {ref}")
