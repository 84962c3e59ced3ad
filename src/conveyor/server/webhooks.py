"""Webhooks from GitHub (HMAC-SHA256 signature) and GitLab (shared token).

The project lead sets a webhook secret and, for commits that were not pushed to this
server, a ``mirror`` URL the server fetches from. What can be checked before the body is
read is checked first (the project, its secret, the signature header or GitLab's token),
and the body is capped (see ``limits``). A call that does not verify is refused (401)
and logged, with the same answer for an unknown project, so the routes do not tell which
projects exist. A delivery is accepted once within the replay window: its id and the
digest of its (signed) body are remembered, a repeat of either is refused (409).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConveyorError, UsageError
from conveyor.server.auth import server
from conveyor.server.db.statuses import ForgeLink
from conveyor.server.limits import spool_body
from conveyor.server.mirrors import fetch_mirror
from conveyor.server.pachyderm_ci import queue_ci
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate, queue_updates
from conveyor.vcs.git import ZERO, check_ref, resolve

router = APIRouter(prefix="/hooks", tags=["webhooks"])
log = logging.getLogger("conveyor.server")
SIGNATURE = re.compile(r"^sha256=[0-9a-f]{64}$")
DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _secret(state: ServerState, project: str) -> str | None:
    """The project's webhook secret; None for an unknown project or one without a secret."""
    try:
        row = state.db.accounts.project(project)
    except ConveyorError:  # not a valid project name: answered like an unknown one
        row = None
    encrypted = row.get("webhook_secret") if row else None
    return state.keyring.decrypt(bytes(encrypted)) if encrypted else None


def _refuse(request: Request, project: str, why: str, answer: str) -> HTTPException:
    """401 with ``answer`` for the caller; the real reason ``why`` goes to the log only."""
    client = request.client.host if request.client else "?"
    log.warning("refused a webhook for %s from %s: %s", project, client, why)
    return HTTPException(401, f"webhook refused: {answer}")


async def _verified_secret(request: Request, project: str, answer: str) -> str:
    secret = await run_in_threadpool(_secret, server(request), project)
    if secret is None:
        why = "no such project, or the project has no webhook secret set"
        raise _refuse(request, project, why, answer)
    return secret


@router.post("/github/{project}")
async def github(request: Request, project: str) -> dict[str, Any]:
    """GitHub push and tag events, verified with X-Hub-Signature-256."""
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery")
    return await _logged(request, project, "github", event, delivery, _github(request, project))


async def _logged(
    request: Request,
    project: str,
    forge: str,
    event: str,
    delivery: str | None,
    handling: Coroutine[Any, Any, dict[str, Any]],
) -> dict[str, Any]:
    """Handle a delivery and keep what the server answered among the project's last
    deliveries (the settings page shows them): deliveries that verified only, so that
    no caller without the secret writes to the database or pushes real ones out."""
    try:
        answer = await handling
    except HTTPException as exc:
        if not getattr(request.state, "verified", False):  # the server's log has it
            raise
        await run_in_threadpool(
            _log_delivery,
            server(request),
            project,
            forge,
            event,
            delivery,
            exc.status_code,
            str(exc.detail),
        )
        raise
    outcome = answer.get("ignored") or "; ".join(answer.get("messages") or []) or "accepted"
    await run_in_threadpool(
        _log_delivery, server(request), project, forge, event, delivery, 200, str(outcome)
    )
    return answer


def _log_delivery(
    state: ServerState,
    project: str,
    forge: str,
    event: str,
    delivery: str | None,
    code: int,
    outcome: str,
) -> None:
    kept = delivery if delivery and DELIVERY_ID.fullmatch(delivery) else None
    try:
        state.hook_log.add(project, forge, event or "?", kept, code, outcome)
    except Exception:  # the list is for people: never let it change the forge's answer
        log.exception("could not keep the webhook delivery of %s", project)


async def _github(request: Request, project: str) -> dict[str, Any]:
    answer = "the X-Hub-Signature-256 signature does not match"
    given = request.headers.get("x-hub-signature-256", "")
    secret = await _verified_secret(request, project, answer)
    if not SIGNATURE.fullmatch(given):  # refused before the body is read
        raise _refuse(request, project, "no well-formed X-Hub-Signature-256 header", answer)
    body = await _signed_body(request, secret, given)
    if body is None:
        raise _refuse(request, project, answer, answer)
    request.state.verified = True
    event = request.headers.get("x-github-event", "")
    if event == "ping":
        return {"ok": True, "runs": []}
    if event != "push":
        return {"ok": True, "ignored": f"event {event!r}", "runs": []}
    delivery = request.headers.get("x-github-delivery")
    return await _push(server(request), project, body, delivery, "webhook:github")


async def _signed_body(request: Request, secret: str, given: str) -> bytes | None:
    """The body if its HMAC-SHA256 is ``given``, else None. Until it verifies, the body
    is spooled (mostly on disk), so unverified callers cannot fill the server's memory."""
    state = server(request)
    spool, _ = await spool_body(request, state.config.max_webhook_body, state.config.data)
    with spool:
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        while chunk := spool.read(1024 * 1024):
            mac.update(chunk)
        if not hmac.compare_digest(given.encode(), f"sha256={mac.hexdigest()}".encode()):
            return None
        spool.seek(0)
        return spool.read()


@router.post("/gitlab/{project}")
async def gitlab(request: Request, project: str) -> dict[str, Any]:
    """GitLab push and tag push events, verified with X-Gitlab-Token."""
    event = request.headers.get("x-gitlab-event", "")
    delivery = request.headers.get("x-gitlab-event-uuid")
    return await _logged(request, project, "gitlab", event, delivery, _gitlab(request, project))


async def _gitlab(request: Request, project: str) -> dict[str, Any]:
    answer = "the X-Gitlab-Token does not match"
    given = request.headers.get("x-gitlab-token", "")
    secret = await _verified_secret(request, project, answer)
    if not hmac.compare_digest(given.encode(), secret.encode()):  # before the body
        raise _refuse(request, project, answer, answer)
    request.state.verified = True
    body = await request.body()
    event = request.headers.get("x-gitlab-event", "")
    if event not in ("Push Hook", "Tag Push Hook"):
        return {"ok": True, "ignored": f"event {event!r}", "runs": []}
    delivery = request.headers.get("x-gitlab-event-uuid")
    return await _push(server(request), project, body, delivery, "webhook:gitlab")


def _delivery_keys(delivery: str | None, body: bytes) -> list[str]:
    """What identifies a delivery: its id header (not signed) and its body's digest."""
    keys = [f"sha256:{hashlib.sha256(body).hexdigest()}"]
    if delivery is not None:
        if not DELIVERY_ID.fullmatch(delivery):
            raise HTTPException(400, "the delivery id header is not a delivery id")
        keys.insert(0, f"id:{delivery}")
    return keys


async def _push(
    state: ServerState, project: str, body: bytes, delivery: str | None, trigger: str
) -> dict[str, Any]:
    try:
        data = json.loads(body)
        ref, after = str(data["ref"]), str(data.get("checkout_sha") or data["after"])
        user = str((data.get("pusher") or {}).get("name") or data.get("user_username") or trigger)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise HTTPException(400, f"the payload is not a push event: {exc}") from exc
    if not ref.startswith(("refs/heads/", "refs/tags/")):  # never fetch into refs/conveyor/
        raise HTTPException(400, f"the payload ref {ref[:200]!r} is not a branch or tag")
    keys = _delivery_keys(delivery, body)
    seen = await run_in_threadpool(
        state.deliveries.remember, project, keys, state.config.replay_window
    )
    if seen is not None:
        what = f"delivery {delivery}" if seen.startswith("id:") else "this delivery's body"
        raise HTTPException(409, f"{what} was already received: a replay is refused")
    if after == ZERO or data.get("deleted") is True:  # a branch or tag deletion
        return {"ok": True, "ignored": f"{ref} was deleted", "messages": []}
    try:
        await run_in_threadpool(_bring_commit, state, project, ref, after)
        link = await run_in_threadpool(_forge_link, state, project, trigger, data, after, ref)
        lines = await run_in_threadpool(
            queue_updates, state, project, [RefUpdate("", after, ref)], user, trigger, link
        )
        # the Pachyderm CI flow, as a push's: "changes" counted from the forge's `before`
        ci_update = RefUpdate(_commit_id(data.get("before")), after, ref)
        lines += await run_in_threadpool(queue_ci, state, project, [ci_update])
    except ConveyorError as exc:
        await run_in_threadpool(state.deliveries.forget, project, keys)
        raise HTTPException(422, str(exc)) from exc
    except HTTPException:
        await run_in_threadpool(state.deliveries.forget, project, keys)  # a redelivery may retry
        raise
    return {"ok": True, "messages": lines}


def _commit_id(value: object) -> str:
    """The forge's ``before`` if it is a commit id (else none: every path counts as
    changed, as for a new branch)."""
    text = value if isinstance(value, str) else ""
    return text if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text) else ""


def _forge_link(
    state: ServerState, project: str, trigger: str, data: Any, commit: str, ref: str
) -> ForgeLink | None:
    """Where this push's runs post their commit status (None: no token, no repository)."""
    from conveyor.server.forge import TOKEN_SECRET, link_from_push

    if not isinstance(data, dict) or TOKEN_SECRET not in state.vault.encrypted(project):
        return None
    settings = state.db.accounts.settings(project)
    return link_from_push(trigger.removeprefix("webhook:"), data, settings, commit, ref)


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
        mirror = state.db.accounts.settings(project).get("mirror")
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
