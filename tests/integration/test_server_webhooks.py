"""Webhooks from GitHub and GitLab: verified calls queue runs, others are refused and logged."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server
from tests.integration.web_support import web_client

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-1"


@pytest.fixture
def server(tmp_path: Path, repo: Repo) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(extra=("--mirror-root", str(tmp_path)))
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo from a webhook\n")
    repo.commit()
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(mirror))
    with srv.api("lead") as lead:
        answer = lead.put("/settings", json={"webhook_secret": SECRET, "mirror": str(mirror)})
        assert answer.status_code == 200, answer.text
        assert "webhook_secret" not in json.dumps(answer.json())
    yield srv
    srv.stop()


def _payload(repo: Repo) -> bytes:
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    return json.dumps(
        {"ref": "refs/heads/main", "after": head, "pusher": {"name": "octocat"}}
    ).encode()


def test_a_signed_github_push_queues_a_run(server: Server, repo: Repo) -> None:
    body = _payload(repo)
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        f"{server.url}/hooks/github/demo",
        content=body,
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["messages"][0].split()[2]
    run = server.wait_run(run_id)
    assert (run["status"], run["trigger"], run["who"]) == ("succeeded", "webhook:github", "octocat")


def test_bad_signatures_and_tokens_are_refused_and_logged(server: Server, repo: Repo) -> None:
    body = _payload(repo)
    for headers in (
        {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"},
        {"X-GitHub-Event": "push"},
    ):
        answer = httpx.post(f"{server.url}/hooks/github/demo", content=body, headers=headers)
        assert answer.status_code == 401
        assert "signature does not match" in answer.json()["detail"]
    wrong = httpx.post(
        f"{server.url}/hooks/gitlab/demo",
        content=body,
        headers={"X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook"},
    )
    assert wrong.status_code == 401
    unknown = httpx.post(f"{server.url}/hooks/github/nope", content=body)
    assert unknown.status_code == 401, "an unknown project answers like a wrong signature"
    with server.api() as api:
        assert api.get("/runs").json()["runs"] == [], "nothing may be queued"
    with web_client(server, "lead") as lead:  # nor written: the deliveries list stays empty
        assert "No deliveries yet." in lead.get("/ui/p/demo/settings").text
    server.stop()
    assert server.logs.count("refused a webhook for demo from 127.0.0.1") == 3, server.logs


def test_a_mirror_cannot_be_another_projects_repository(server: Server) -> None:
    with server.api("lead") as lead:
        inside = str(server.data / "projects/other/repo.git")
        answer = lead.put("/settings", json={"mirror": inside})
        assert answer.status_code == 400 and "data directory" in answer.json()["detail"]
        answer = lead.put("/settings", json={"mirror": f"file://{inside}"})
        assert answer.status_code == 400


def test_a_gitlab_push_with_its_token_queues_a_run(server: Server, repo: Repo) -> None:
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    body = json.dumps(
        {"ref": "refs/heads/main", "checkout_sha": head, "after": head, "user_username": "gl"}
    )
    answer = httpx.post(
        f"{server.url}/hooks/gitlab/demo",
        content=body,
        headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["messages"][0].split()[2]
    assert server.wait_run(run_id)["trigger"] == "webhook:gitlab"
    broken = httpx.post(
        f"{server.url}/hooks/gitlab/demo",
        content=b"{not json",
        headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
    )
    assert broken.status_code == 400 and "not a push event" in broken.json()["detail"]
