"""Executions a stopped server left ``running``: when the server starts again, each is
settled from its run: failed with why when the server's death took its run with it,
succeeded with its outputs when the run still finished."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    yield srv
    srv.stop()


def _deploy(repo: Repo, server: Server, pipeline: str) -> None:
    repo.pipeline(pipeline)
    repo.write("m.py", "def f():\n    return {'y': 7}\n")
    repo.commit("pipeline")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    with server.api("lead") as lead:
        assert lead.post("/deployments", json={"name": "svc"}).status_code == 201


def _call_in_background(server: Server) -> None:
    def call() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
            httpx.post(
                f"{server.url}/api/v1/projects/demo/deployments/svc/call",
                json={},
                headers={"Authorization": f"Bearer {server.tokens['member']}"},
                timeout=60,
            )

    threading.Thread(target=call, daemon=True).start()


def _execution(server: Server, until: tuple[str, ...], run: tuple[str, ...] = ()) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with server.api("viewer") as viewer:
                found = viewer.get("/deployments/svc/executions").json()["executions"]
                runs = {e["run_id"]: viewer.get(f"/runs/{e['run_id']}").json() for e in found}
        except httpx.TransportError:
            found = []
        ok = found and found[0]["status"] in until
        if ok and (not run or runs[found[0]["run_id"]]["status"] in run):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no execution {until} (run {run}) in 60 s")


def _kill(server: Server) -> None:
    proc = server.procs.pop()
    proc.kill()
    proc.wait()
    if proc.stderr:
        proc.stderr.close()


def test_an_execution_whose_run_died_with_the_server_is_failed_with_why(
    repo: Repo, server: Server
) -> None:
    server.start(workers=1)
    # no run of the push (on: push: null) and no cache: the call's own run is what runs
    pipeline = (
        "on: {push: null}\njobs:\n  s:\n    steps:\n      - run: sleep 30\n        cache: false\n"
    )
    _deploy(repo, server, pipeline)
    _call_in_background(server)
    left = _execution(server, ("running",), ("running",))
    _kill(server)  # SIGKILL: no chance to close the record
    server.start(workers=1)
    settled = _execution(server, ("failed",))
    assert settled["id"] == left["id"]
    assert settled["error"].startswith("lost: the server stopped while this execution waited")
    assert "interrupted" in settled["error"]


def test_an_execution_whose_run_still_finished_gets_its_outputs(repo: Repo, server: Server) -> None:
    server.start(workers=0)  # the run waits in the queue while the server dies
    _deploy(repo, server, "jobs:\n  s:\n    steps:\n      - python: m:f\n")
    _call_in_background(server)
    left = _execution(server, ("running",), ("queued",))
    _kill(server)
    server.start(workers=1)
    settled = _execution(server, ("succeeded",))
    assert settled["id"] == left["id"] and settled["error"] is None
    assert settled["outputs"] == {"result": {"y": 7}}
