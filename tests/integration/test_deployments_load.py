"""10,000 calls of a low_latency endpoint from 20 concurrent clients, with a push that
moves the deployment to a new commit halfway: every call is answered (none dropped by
the swap of warm pools) and has exactly one execution record (none lost, none twice)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CALLS = 10_000
CLIENTS = 20
PIPELINE = "jobs:\n  serve:\n    steps:\n      - id: add\n        python: fn:add\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=0)
    yield srv
    srv.stop()


def _push(repo: Repo, server: Server, version: int) -> None:
    repo.pipeline(PIPELINE)
    repo.write("fn.py", f"def add(a, b):\n    return {{'sum': a + b, 'version': {version}}}\n")
    repo.commit(f"version {version}")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")


def test_ten_thousand_calls_leave_ten_thousand_records(repo: Repo, server: Server) -> None:
    _push(repo, server, 1)
    inputs = [{"name": n, "type": "integer"} for n in ("a", "b")]
    settings = {"inputs": inputs, "pool_size": 4, "rate_limit": 0, "max_parallel_executions": 64}
    with server.api("lead") as lead:
        body = {"name": "add", "mode": "low_latency", "settings": settings}
        assert lead.post("/deployments", json=body).status_code == 201
    url = f"{server.url}/api/v1/projects/demo/deployments/add/call"
    headers = {"Authorization": f"Bearer {server.tokens['member']}"}
    halfway = threading.Event()
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(i: int) -> tuple[int, str, int]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(headers=headers, timeout=120)
            clients.append(local.client)
        if i == CALLS // 2:
            halfway.set()
        answer = local.client.post(url, json={"a": i, "b": 1})
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["outputs"]["result"]["sum"] == i + 1
        return i, data["execution_id"], data["outputs"]["result"]["version"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(one, i) for i in range(CALLS)]
        halfway.wait()
        _push(repo, server, 2)
        answers = [f.result() for f in futures]
    for client in clients:
        client.close()
    ids = [execution_id for _, execution_id, _ in answers]
    assert len(set(ids)) == CALLS
    assert {version for _, _, version in answers} == {1, 2}
    with server.api("viewer") as viewer:
        shown = viewer.get("/deployments/add").json()
    assert shown["executions"] == {"succeeded": CALLS}
