"""A commit that reaches the followed branch through a forge webhook (its commit fetched
from the project's mirror) queues the Pachyderm CI flow as a git push does: only a
verified delivery, only the followed branch, only when the context or a spec changed,
and once per commit however many ways it arrives (a redelivery, a push of the same
commit). Real server on 127.0.0.1 and real git; the project's jobs are left to a
``conveyor worker`` that does not run, so the queued triggers stay to be read (no build:
tests/integration/test_server_pachyderm_ci.py builds)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-ci"
SPEC = {
    "pipeline": {"name": "edges"},
    "transform": {"image": "org/edges:dev", "cmd": ["true"]},
    "input": {"pfs": {"repo": "images", "glob": "/*"}},
}


def commit(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", message)
    return git(work, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path / "srv", None)
    srv.start(workers=0, extra=("--mirror-root", str(tmp_path)))
    yield srv
    srv.stop()


@pytest.fixture
def work(tmp_path: Path, server: Server) -> Path:
    """A checkout whose bare mirror the project fetches from; the CI flow set on."""
    checkout = tmp_path / "work"
    (checkout / "image").mkdir(parents=True)
    (checkout / "image" / "Dockerfile").write_text("FROM local/base\n")
    (checkout / "edges.json").write_text(json.dumps(SPEC))
    git(checkout, "init", "-q", "-b", "main")
    commit(checkout, "image and spec")
    git(tmp_path, "clone", "-q", "--bare", str(checkout), str(tmp_path / "mirror.git"))
    git(checkout, "remote", "add", "mirror", str(tmp_path / "mirror.git"))
    settings = {
        "webhook_secret": SECRET,
        "mirror": str(tmp_path / "mirror.git"),
        "pachyderm_ci": ["edges.json"],
        "pachyderm_ci_context": "image",
        "registry": "127.0.0.1:5000",
        "pachyderm_jobs": "worker",  # no worker runs: the triggers stay queued
    }
    with server.api("lead") as lead:
        answer = lead.put("/settings", json=settings)
        assert answer.status_code == 200, answer.text
    return checkout


def deliver(server: Server, payload: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{server.url}/hooks/github/demo",
        content=body,
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
        timeout=60,
    )


def ci_triggers(server: Server) -> list[tuple[str, str]]:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=server.data).database_url)
    try:
        return [(r["name"], r["branch"]) for r in db.pachyderm.pending() if r["kind"] == "ci"]
    finally:
        db.close()


def push_event(after: str, before: str = "0" * 40, ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"ref": ref, "before": before, "after": after, "pusher": {"name": "octocat"}}


def test_a_webhook_queues_the_flow_once_per_commit(server: Server, work: Path) -> None:
    first = git(work, "rev-parse", "HEAD").stdout.strip()
    answer = deliver(server, push_event(first))
    assert answer.status_code == 200, answer.text
    said = " ".join(answer.json()["messages"])
    assert f"pachyderm CI of {first[:12]} queued" in said, said
    assert ci_triggers(server) == [(first, "main")]
    # the same commit again: another delivery (another body)
    again = deliver(server, {**push_event(first), "compare": "x"})
    assert again.status_code == 200, again.text
    assert "was queued before" in " ".join(again.json()["messages"])
    assert ci_triggers(server) == [(first, "main")]

    # a later commit that changes neither the context nor a spec: nothing
    (work / "README.md").write_text("notes\n")
    second = commit(work, "notes")
    git(work, "push", "-q", "mirror", "main")
    answer = deliver(server, push_event(second, before=first))
    assert "changes no image or spec" in " ".join(answer.json()["messages"]), answer.text
    # one that changes the spec, pushed to the server and to the forge: queued once
    (work / "edges.json").write_text(json.dumps({**SPEC, "description": "new"}))
    third = commit(work, "spec")
    git(work, "remote", "add", "origin", server.git_url("demo", "member"))
    pushed = git(work, "push", "-q", "origin", "main").stderr
    assert f"pachyderm CI of {third[:12]} queued" in pushed, pushed
    git(work, "push", "-q", "mirror", "main")
    answer = deliver(server, push_event(third, before=second))
    assert "was queued before" in " ".join(answer.json()["messages"]), answer.text
    assert ci_triggers(server) == [(first, "main"), (third, "main")]


def test_only_a_verified_delivery_to_the_followed_branch_queues_it(
    server: Server, work: Path
) -> None:
    head = git(work, "rev-parse", "HEAD").stdout.strip()
    forged = deliver(server, push_event(head), secret="not-the-secret")
    assert forged.status_code == 401
    git(work, "push", "-q", "mirror", "main:feature")
    other = deliver(server, push_event(head, ref="refs/heads/feature"))
    assert other.status_code == 200, other.text
    assert "pachyderm CI" not in json.dumps(other.json())
    # a viewer cannot bring it either: its push is refused
    git(work, "remote", "add", "viewer", server.git_url("demo", "viewer"))
    refused = git(work, "push", "-q", "viewer", "main", check=False)
    assert refused.returncode != 0
    assert ci_triggers(server) == []
