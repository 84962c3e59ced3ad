"""Commit statuses on GitHub and GitLab for runs a webhook of theirs started.

The webhook's payload (verified) names the repository; the project's settings may name
the forge's API (``forge_api``, for GitHub Enterprise or a self-hosted GitLab), and the
lead stores the token in the vault under a reserved name that steps never receive.
Each state (queued, running, finished) becomes a row of the outbox (``db.statuses``);
``deliver`` sends the due rows and retries with doubling delays when the forge is
down (5xx, 429, no answer), so a restart loses nothing. A refusal (another 4xx) is
final: retrying would not change the answer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from conveyor import __version__
from conveyor.domain.states import RunStatus
from conveyor.errors import UsageError
from conveyor.server.db.statuses import ForgeLink, OwedStatus, Statuses
from conveyor.server.state import ServerState

log = logging.getLogger("conveyor.server")

TOKEN_SECRET = "CONVEYOR_FORGE_TOKEN"  # reserved: never a step's secret
CONTEXT = "conveyor"  # GitHub's ``context``, GitLab's ``name``: one status per commit
DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com"}
MAX_ATTEMPTS = 10
MAX_DELAY = 600.0
TIMEOUT = 10.0
POLL = 1.0  # seconds between looks for due statuses
KEEP = 30 * 24 * 3600.0  # seconds a closed status stays listed
PRUNE_EVERY = 3600.0
GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
GITLAB_PROJECT = re.compile(r"^[0-9]{1,20}$")

# the forge's word for each run status (GitHub: error/failure/pending/success)
GITHUB_STATES = {
    RunStatus.QUEUED: "pending",
    RunStatus.RUNNING: "pending",
    RunStatus.SUCCEEDED: "success",
    RunStatus.FAILED: "failure",
    RunStatus.CANCELLED: "error",
    RunStatus.INTERRUPTED: "error",
}
GITLAB_STATES = {
    RunStatus.QUEUED: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.SUCCEEDED: "success",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "canceled",
    RunStatus.INTERRUPTED: "failed",
}


def check_api(url: str) -> str:
    """A forge API base URL: http(s), a host, no credentials, query or fragment."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or len(url) > 300
    ):
        raise UsageError(
            f"{url[:200]!r} is not a forge API URL: use http(s)://host[/path], "
            "e.g. https://api.github.com or https://gitlab.example.com"
        )
    return url.rstrip("/")


def link_from_push(
    forge: str, data: dict[str, Any], settings: dict[str, Any], commit: str, ref: str
) -> ForgeLink | None:
    """Where to post statuses for a push the forge's webhook described; None when the
    payload does not name its repository (statuses are then not sent)."""
    if forge == "github":
        repository = _object(data.get("repository"))
        repo = str(repository.get("full_name") or "")
        ok = bool(GITHUB_REPO.fullmatch(repo)) and not {".", ".."} & set(repo.split("/"))
        web = repository.get("html_url")
    else:
        project = _object(data.get("project"))
        repo = str(data.get("project_id") or project.get("id") or "")
        ok = bool(GITLAB_PROJECT.fullmatch(repo))
        web = project.get("web_url")
    if not ok:
        return None
    api = str(settings.get("forge_api") or DEFAULT_API[forge])
    return ForgeLink(forge, api, repo, commit, ref, _web_page(web))


def commit_url(link: ForgeLink) -> str | None:
    """The commit's page on the forge (the payload named the repository's page)."""
    if not link.web:
        return None
    path = "commit" if link.forge == "github" else "-/commit"
    return f"{link.web.rstrip('/')}/{path}/{quote(link.commit, safe='')}"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _web_page(value: Any) -> str:
    """A repository's page as the payload gave it, if it is a plain http(s) URL (it
    becomes a link on the run's page); else nothing."""
    if not isinstance(value, str) or len(value) > 300:
        return ""
    parts = urlsplit(value)
    plain = parts.scheme in ("http", "https") and parts.hostname and not parts.username
    if not plain or parts.password or parts.query or parts.fragment or "\\" in value:
        return ""
    return value


def run_url(base_url: str, project: str, run_id: str) -> str:
    return f"{base_url}/ui/p/{project}/runs/{run_id}"


def describe(status: RunStatus, failed_steps: list[str], error: str | None = None) -> str:
    """The status's one line on the forge (at most 140 characters)."""
    if status == RunStatus.FAILED and failed_steps:
        more = f" (and {len(failed_steps) - 1} more)" if len(failed_steps) > 1 else ""
        text = f"failed at step {failed_steps[0]}{more}"
    elif status == RunStatus.FAILED and error:
        text = f"failed: {error.splitlines()[0] if error.strip() else error}"
    else:
        text = {
            RunStatus.QUEUED: "queued",
            RunStatus.RUNNING: "running",
            RunStatus.SUCCEEDED: "succeeded",
            RunStatus.FAILED: "failed",
            RunStatus.CANCELLED: "cancelled",
            RunStatus.INTERRUPTED: "interrupted (the server stopped); resume it",
        }[status]
    text = f"Conveyor: {text}"
    return text if len(text) <= 140 else text[:139] + "…"


def owe(
    statuses: Statuses,
    project: str,
    run_id: str,
    link: ForgeLink,
    status: RunStatus,
    target_url: str,
    failed_steps: list[str] | None = None,
    error: str | None = None,
) -> None:
    """Owe the forge the run's new status (sent by ``deliver``)."""
    states = GITHUB_STATES if link.forge == "github" else GITLAB_STATES
    description = describe(status, failed_steps or [], error)
    statuses.add(project, run_id, link, states[status], description, target_url)


def follow_run(
    statuses: Statuses,
    run_id: str,
    status: RunStatus,
    failed_steps: list[str] | None = None,
    error: str | None = None,
) -> None:
    """A run changed status: owe its forge the new one, if a webhook started it."""
    found = statuses.link_of(run_id)
    if found is None:
        return
    project, link, target_url = found
    owe(statuses, project, run_id, link, status, target_url, failed_steps, error)


def request_of(owed: OwedStatus, token: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The forge's documented call: URL, headers and JSON body."""
    link = owed.link
    api = link.api.rstrip("/")
    agent = f"conveyor/{__version__}"
    if link.forge == "github":
        # POST /repos/{owner}/{repo}/statuses/{sha}
        url = f"{api}/repos/{link.repo}/statuses/{link.commit}"
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": agent,
        }
        body = {
            "state": owed.state,
            "target_url": owed.target_url,
            "description": owed.description,
            "context": CONTEXT,
        }
        return url, headers, body
    # POST /api/v4/projects/:id/statuses/:sha
    url = f"{api}/api/v4/projects/{quote(link.repo, safe='')}/statuses/{link.commit}"
    headers = {"PRIVATE-TOKEN": token, "User-Agent": agent}
    body = {
        "state": owed.state,
        "name": CONTEXT,
        "target_url": owed.target_url,
        "description": owed.description,
    }
    if link.ref.startswith("refs/heads/"):
        body["ref"] = link.ref.removeprefix("refs/heads/")
    elif link.ref.startswith("refs/tags/"):
        body["ref"] = link.ref.removeprefix("refs/tags/")
    return url, headers, body


def delay(attempts: int, first: float) -> float:
    """Seconds before the next try: ``first``, doubling, at most ``MAX_DELAY``."""
    return float(min(first * 2 ** (attempts - 1), MAX_DELAY))


def send_due(state: ServerState, client: Any, statuses: Statuses | None = None) -> int:
    """Send every due status once; returns how many were tried."""
    import httpx

    statuses = statuses or Statuses(state.db.engine)
    owed_now = statuses.claim_due()
    for owed in owed_now:
        token = _token(state, owed.project)
        if token is None:
            statuses.gave_up(owed.id, "no forge token: a lead sets it on the settings page")
            continue
        url, headers, body = request_of(owed, token)
        try:
            answer = client.post(url, headers=headers, json=body, timeout=TIMEOUT)
            code, why = answer.status_code, f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            code, why = 0, f"no answer: {type(exc).__name__}"
        if 200 <= code < 300:
            statuses.sent(owed.id, why)
        elif code in (0, 408, 429) or code >= 500:
            attempts = owed.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                statuses.gave_up(owed.id, f"{why}; gave up after {attempts} tries")
            else:
                at = time.time() + delay(attempts, state.config.status_retry)
                statuses.retry(owed.id, attempts, at, f"{why}; will retry")
                log.warning("forge status for run %s: %s; will retry", owed.run_id, why)
        else:
            statuses.gave_up(owed.id, f"{why}: the forge refused it")
            log.warning("forge status for run %s refused: %s", owed.run_id, why)
    return len(owed_now)


def _token(state: ServerState, project: str) -> str | None:
    encrypted = state.vault.encrypted(project).get(TOKEN_SECRET)
    return state.keyring.decrypt(encrypted) if encrypted else None


def deliver(state: ServerState, stop: threading.Event) -> None:
    """The sender's loop (a thread of the server): due statuses, every ``POLL`` seconds."""
    import httpx

    statuses = Statuses(state.db.engine)
    pruned = 0.0
    with httpx.Client(follow_redirects=False) as client:
        while not stop.wait(POLL):
            try:
                send_due(state, client, statuses)
                if time.monotonic() - pruned > PRUNE_EVERY:
                    statuses.prune(time.time() - KEEP)
                    pruned = time.monotonic()
            except Exception:  # the database went away for a moment: try again
                log.exception("sending forge statuses failed")
