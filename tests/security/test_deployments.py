"""Attacks on deployment endpoints, against a real server: calls without a token, with
a wrong one, with another deployment's, with an old one after rotation, with the
endpoint token used as an API token, by a viewer; bodies over the deployment's limit
(declared and chunked); a warm worker that tries to read the server's data; input
mapped from the server's own environment (only the project's variables are read);
the token never stored in clear."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration

PIPELINE = "jobs:\n  serve:\n    steps:\n      - id: peek\n        python: peek:peek\n"
MODULE = """\
import os


def peek(path=""):
    if not path:
        return {"ok": True}
    try:
        with open(path, "rb") as handle:
            return {"read": len(handle.read())}
    except OSError as exc:
        return {"error": type(exc).__name__}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=1)
    yield srv
    srv.stop()


def _setup(repo: Repo, server: Server) -> dict[str, str]:
    repo.pipeline(PIPELINE)
    repo.write("peek.py", MODULE)
    repo.commit("peek")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    tokens = {}
    inputs = [{"name": "path", "type": "string", "required": False}]
    with server.api("lead") as lead:
        for name in ("one", "two"):
            settings: dict[str, Any] = {"inputs": inputs, "pool_size": 1, "max_body": 300}
            body = {"name": name, "mode": "low_latency", "settings": settings}
            answer = lead.post("/deployments", json=body)
            assert answer.status_code == 201, answer.text
            tokens[name] = answer.json()["token"]
    return tokens


def _call(server: Server, name: str, header: str | None, body: Any = None) -> httpx.Response:
    headers = {"Authorization": header} if header else {}
    return httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/{name}/call",
        json={} if body is None else body,
        headers=headers,
        timeout=60,
    )


def test_endpoint_tokens_open_their_own_endpoint_only(repo: Repo, server: Server) -> None:
    tokens = _setup(repo, server)
    assert _call(server, "one", f"EndpointToken {tokens['one']}").status_code == 200
    assert _call(server, "one", None).status_code == 401
    assert _call(server, "one", "EndpointToken not-the-token").status_code == 401
    assert _call(server, "one", "EndpointToken").status_code == 401
    assert _call(server, "one", f"EndpointToken {tokens['two']}").status_code == 401
    assert _call(server, "one", f"Bearer {tokens['one']}").status_code == 401
    assert _call(server, "one", f"Bearer {server.tokens['viewer']}").status_code == 403
    assert _call(server, "one", f"Bearer {server.tokens['outsider']}").status_code == 403
    # the endpoint token is no API token: it reads nothing else
    api = httpx.get(
        f"{server.url}/api/v1/projects/demo/deployments",
        headers={"Authorization": f"Bearer {tokens['one']}"},
    )
    assert api.status_code == 401
    with server.api("lead") as lead:
        fresh = lead.post("/deployments/one/token").json()["token"]
    assert _call(server, "one", f"EndpointToken {tokens['one']}").status_code == 401
    assert _call(server, "one", f"EndpointToken {fresh}").status_code == 200
    database = (server.data / "server.db").read_bytes()
    assert fresh.encode() not in database and tokens["two"].encode() not in database


def test_bodies_over_the_deployments_limit_are_refused(repo: Repo, server: Server) -> None:
    _setup(repo, server)
    member = f"Bearer {server.tokens['member']}"
    declared = _call(server, "one", member, {"path": "x" * 400})
    assert declared.status_code == 413 and "300 bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:
        yield b'{"path": "'
        for _ in range(10):
            yield b"x" * 50  # 500 bytes in all, never declared
        yield b'"}'

    chunked = httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/one/call",
        content=chunks(),
        headers={"Authorization": member, "Content-Type": "application/json"},
        timeout=60,
    )
    assert chunked.status_code == 413
    huge = httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/one/call",
        content=b"x" * (65 * 1024**2),
        headers={"Authorization": member},
        timeout=60,
    )
    assert huge.status_code == 413


def test_a_warm_worker_cannot_read_the_servers_data(repo: Repo, server: Server) -> None:
    _setup(repo, server)
    member = f"Bearer {server.tokens['member']}"
    for secret in ("server.key", "server.db"):
        answer = _call(server, "one", member, {"path": str(server.data / secret)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"]["result"] == {"error": "FileNotFoundError"}


def test_inputs_from_the_environment_are_the_projects_variables_only(
    repo: Repo, server: Server
) -> None:
    _setup(repo, server)
    inputs = [{"name": "path", "source": "environment", "value": "HOME"}]
    with server.api("lead") as lead:
        answer = lead.patch("/deployments/one", json={"settings": {"inputs": inputs}})
        assert answer.status_code == 200, answer.text
    refused = _call(server, "one", f"Bearer {server.tokens['member']}")
    assert refused.status_code == 422 and "$HOME is not set" in refused.json()["detail"]
