"""Deployments on a real server: an endpoint in elastic mode (each call a run of the
queue) and in low_latency mode (warm sandboxed workers), its executions, token
rotation, bad input as a 4xx naming the input, a warm worker killed mid-call, a push
that moves a following deployment with no call dropped, and periodic executions."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import ROLES, Server, git, make_server

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  x: {type: int, default: 1}
jobs:
  serve:
    steps:
      - id: predict
        python: model.serve:predict
        env:
          X: ${{ params.x }}
"""

MODULE = """\
import os
import time
import uuid

FACTOR = {factor}
WORKER = uuid.uuid4().hex  # one per process that imported the module


def predict(x=None, sleep=0):
    x = int(os.environ["X"]) if x is None else x
    print("predicting", x)
    if sleep:
        time.sleep(sleep)
    if x < 0:
        raise ValueError("x must not be negative")
    return {{"y": x * FACTOR, "worker": WORKER}}
"""

INPUTS = [
    {"name": "x", "type": "integer"},
    {"name": "sleep", "type": "number", "required": False},
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=2)
    yield srv
    srv.stop()


def push(repo: Repo, server: Server, factor: int) -> str:
    repo.pipeline(PIPELINE)
    repo.write("model/__init__.py", "")
    repo.write("model/serve.py", MODULE.format(factor=factor))
    repo.commit(f"factor {factor}")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    return git(repo.path, "rev-parse", "HEAD").stdout.strip()


def create(server: Server, name: str, mode: str, **settings: Any) -> dict[str, Any]:
    body = {"name": name, "mode": mode, "settings": {"inputs": INPUTS, **settings}}
    with server.api("lead") as lead:
        answer = lead.post("/deployments", json=body)
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


def call(server: Server, name: str, body: Any, token: str | None = None) -> httpx.Response:
    header = f"EndpointToken {token}" if token else f"Bearer {server.tokens['member']}"
    return httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/{name}/call",
        json=body,
        headers={"Authorization": header},
        timeout=60,
    )


def test_an_elastic_endpoint_runs_the_pipeline_per_call(repo: Repo, server: Server) -> None:
    push(repo, server, 2)
    created = create(server, "double", "elastic")
    assert created["commit"] and created["token"] and created["follow"] is True
    by_member = call(server, "double", {"x": 3})
    assert by_member.status_code == 200, by_member.text
    assert by_member.json()["outputs"] == {
        "result": {"y": 6, "worker": by_member.json()["outputs"]["result"]["worker"]}
    }
    run = server.wait_run(by_member.json()["run_id"])
    assert run["status"] == "succeeded" and run["params"] == {"x": 3}
    by_token = call(server, "double", {"x": 5}, token=created["token"])
    assert by_token.status_code == 200 and by_token.json()["outputs"]["result"]["y"] == 10
    with server.api("viewer") as viewer:
        executions = viewer.get("/deployments/double/executions").json()["executions"]
    assert [(e["caller"], e["inputs"], e["status"]) for e in executions] == [
        ("endpoint-token", {"x": 5}, "succeeded"),
        ("member", {"x": 3}, "succeeded"),
    ]
    assert all(e["duration"] > 0 and "predicting" in e["logs"] for e in executions)
    failed = call(server, "double", {"x": -1})
    assert failed.status_code == 500 and "serve.predict failed" in failed.json()["detail"]
    with server.api("viewer") as viewer:
        record = viewer.get(f"/deployments/double/executions/{failed.json()['execution_id']}")
    assert record.json()["status"] == "failed"
    assert "x must not be negative" in record.json()["logs"]


def test_a_low_latency_endpoint_serves_from_warm_workers(repo: Repo, server: Server) -> None:
    push(repo, server, 3)
    created = create(
        server,
        "fast",
        "low_latency",
        pool_size=2,
        outputs=[{"name": "y", "key": "y"}, {"name": "worker", "key": "worker"}],
    )
    answers = [call(server, "fast", {"x": i}) for i in range(20)]
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert [a.json()["outputs"]["y"] for a in answers] == [3 * i for i in range(20)]
    assert len({a.json()["outputs"]["worker"] for a in answers}) <= 2  # no process per call
    with server.api("viewer") as viewer:
        shown = viewer.get("/deployments/fast").json()
    assert shown["executions"] == {"succeeded": 20} and len(shown["warm_workers"]) == 2
    # the token: rotated, the old one stops at once
    assert call(server, "fast", {"x": 1}, token=created["token"]).status_code == 200
    with server.api("lead") as lead:
        fresh = lead.post("/deployments/fast/token").json()["token"]
    assert call(server, "fast", {"x": 1}, token=created["token"]).status_code == 401
    assert call(server, "fast", {"x": 1}, token=fresh).status_code == 200


def test_bad_input_is_a_4xx_naming_the_input(repo: Repo, server: Server) -> None:
    push(repo, server, 2)
    create(server, "strict", "low_latency", pool_size=1, max_body=200)
    cases = [
        ({"x": "three"}, 422, "x", "integer"),
        ({"x": 1.5}, 422, "x", "integer"),
        ({"x": True}, 422, "x", "integer"),
        ({}, 422, "x", "integer"),
        ({"x": 1, "sleep": "long"}, 422, "sleep", "number"),
        ({"x": 1, "y": 2}, 422, "y", None),
    ]
    for body, status, name, expected in cases:
        answer = call(server, "strict", body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["input"] == name and answer.json()["expected"] == expected
        assert name in answer.json()["detail"]
    not_an_object = call(server, "strict", [1, 2])
    assert not_an_object.status_code == 422
    too_big = call(server, "strict", {"x": 1, "pad": "a" * 500})
    assert too_big.status_code == 413
    with server.api("viewer") as viewer:
        assert viewer.get("/deployments/strict").json()["executions"] == {}


def test_a_warm_worker_killed_mid_call_fails_that_call_only(repo: Repo, server: Server) -> None:
    push(repo, server, 2)
    create(server, "kill", "low_latency", pool_size=2)
    assert call(server, "kill", {"x": 1}).status_code == 200
    with server.api("viewer") as viewer:
        before = viewer.get("/deployments/kill").json()["warm_workers"]
    assert len(before) == 2
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(call, server, "kill", {"x": i, "sleep": 3}) for i in range(2)]
        time.sleep(1.0)  # both workers are in their call
        os.kill(before[0], signal.SIGKILL)
        answers = [f.result() for f in slow]
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 503], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 503).json()
    assert "signal 9" in lost["detail"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the pool recovers its size
        with server.api("viewer") as viewer:
            after = viewer.get("/deployments/kill").json()["warm_workers"]
        if len(after) == 2 and before[0] not in after:
            break
        time.sleep(0.1)
    assert len(after) == 2 and before[0] not in after
    assert all(call(server, "kill", {"x": i}).status_code == 200 for i in range(4))


def test_a_push_moves_a_following_deployment_without_dropping_calls(
    repo: Repo, server: Server
) -> None:
    push(repo, server, 2)
    create(server, "follow", "low_latency", pool_size=2)
    assert call(server, "follow", {"x": 1}).json()["outputs"]["result"]["y"] == 2
    stop = threading.Event()
    results: list[httpx.Response] = []

    def load() -> None:
        while not stop.is_set():
            results.append(call(server, "follow", {"x": 1}))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    commit = push(repo, server, 5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        results
        and results[-1].status_code == 200
        and results[-1].json()["outputs"]["result"]["y"] == 5
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert all(r.status_code == 200 for r in results), {r.status_code for r in results}
    ys = [r.json()["outputs"]["result"]["y"] for r in results]
    assert ys[-1] == 5 and set(ys) == {2, 5}
    assert ys.index(5) > 0 and 2 not in ys[ys.index(5) + 3 :]  # old until new, then new
    with server.api("viewer") as viewer:
        assert viewer.get("/deployments/follow").json()["commit"] == commit


def test_periodic_executions_appear(repo: Repo, server: Server) -> None:
    push(repo, server, 4)
    body = {
        "name": "tick",
        "kind": "periodic",
        "mode": "low_latency",
        "settings": {
            "schedule": "* * * * * */2",  # every 2 seconds (croniter's sixth field)
            "inputs": [{"name": "x", "type": "integer", "source": "constant", "value": 7}],
            "pool_size": 1,
        },
    }
    with server.api("lead") as lead:
        created = lead.post("/deployments", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["token"] is None
    deadline = time.monotonic() + 30
    executions: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(executions) < 2:
        with server.api("viewer") as viewer:
            executions = viewer.get("/deployments/tick/executions").json()["executions"]
        executions = [e for e in executions if e["status"] == "succeeded"]
        time.sleep(0.2)
    assert len(executions) >= 2
    assert all(e["caller"] == "schedule" and e["outputs"]["result"]["y"] == 28 for e in executions)
    with server.api("lead") as lead:
        assert lead.post("/deployments/tick/disable").json()["enabled"] is False
        refused = call(server, "tick", {})
    assert refused.status_code == 409


def test_the_deploy_commands_against_the_server(repo: Repo, server: Server) -> None:
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    push(repo, server, 4)
    lead, member, viewer = ({"CONVEYOR_TOKEN": server.tokens[who]} for who in ROLES[::-1])
    refused = repo.run("deploy", "create", "svc", "-i", "x=integer", env=viewer)
    assert refused.code == 2 and "lead role" in refused.err
    created = repo.run(
        "deploy",
        "create",
        "svc",
        "--mode",
        "low_latency",
        "-i",
        "x=integer",
        "--pool-size",
        "1",
        env=lead,
    )
    assert created.code == 0, created.err
    assert "endpoint token (shown once)" in created.out
    called = repo.run("deploy", "call", "svc", "-i", "x=5", "--json", env=member)
    assert called.code == 0, called.err
    assert json.loads(called.out)["outputs"]["result"]["y"] == 20
    bad = repo.run("deploy", "call", "svc", "-i", "x=five", env=member)
    assert bad.code == 2 and "'x' must be an integer" in bad.err
    listed = repo.run("deploy", "list", "--json", env=viewer)
    assert [d["name"] for d in json.loads(listed.out)] == ["svc"]
    logs = repo.run("deploy", "logs", "svc", env=viewer)
    assert logs.code == 0 and "succeeded" in logs.out and "predicting 5" in logs.out
    assert repo.run("deploy", "disable", "svc", env=lead).code == 0
    off = repo.run("deploy", "call", "svc", "-i", "x=1", env=member)
    assert off.code == 2 and "disabled" in off.err
    assert repo.run("deploy", "delete", "svc", "--yes", env=lead).code == 0
    assert not (server.data / "projects/demo/deployments/svc").exists()
    gone = repo.run("deploy", "inspect", "svc", env=viewer)
    assert gone.code == 2 and "no deployment 'svc'" in gone.err


def test_a_function_that_cannot_load_is_a_clear_503(repo: Repo, server: Server) -> None:
    repo.pipeline("jobs:\n  s:\n    steps:\n      - python: missing.module:fn\n")
    repo.commit("no such module")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    with server.api("lead") as lead:
        body = {"name": "broken", "mode": "low_latency", "settings": {"pool_size": 1}}
        assert lead.post("/deployments", json=body).status_code == 201
    answer = call(server, "broken", {})
    assert answer.status_code == 503, answer.text
    assert "cannot load the function: ModuleNotFoundError" in answer.json()["detail"]
    with server.api("viewer") as viewer:
        executions = viewer.get("/deployments/broken/executions").json()["executions"]
    assert [e["status"] for e in executions] == ["failed"]


EXCLUSIVE = """\
import os
import time


def once(n=0):
    # O_EXCL: a second execution at the same time finds the mark (the checkout is shared)
    fd = os.open("busy.mark", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        time.sleep(0.2)
    finally:
        os.close(fd)
        os.unlink("busy.mark")
    return n
"""


def test_max_parallel_executions_is_honoured(repo: Repo, server: Server) -> None:
    repo.pipeline("jobs:\n  s:\n    steps:\n      - python: excl:once\n")
    repo.write("excl.py", EXCLUSIVE)
    repo.commit("exclusive")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    settings = {
        "inputs": [{"name": "n", "type": "integer"}],
        "pool_size": 3,
        "max_parallel_executions": 1,
    }
    with server.api("lead") as lead:
        body = {"name": "one", "mode": "low_latency", "settings": settings}
        assert lead.post("/deployments", json=body).status_code == 201
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: call(server, "one", {"n": n}), range(12)))
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    assert sorted(a.json()["outputs"]["result"] for a in answers) == list(range(12))


def test_an_elastic_call_out_of_time_is_a_504_and_its_run_is_cancelled(
    repo: Repo, server: Server
) -> None:
    repo.pipeline("jobs:\n  s:\n    steps:\n      - run: sleep 30\n")
    repo.commit("slow")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    with server.api("lead") as lead:
        body = {"name": "slow", "settings": {"timeout": 1}}
        assert lead.post("/deployments", json=body).status_code == 201
    answer = call(server, "slow", {})
    assert answer.status_code == 504 and "did not finish in 1 s" in answer.json()["detail"]
    with server.api("viewer") as viewer:
        execution = viewer.get("/deployments/slow/executions").json()["executions"][0]
    assert execution["status"] == "failed" and execution["run_id"]
    assert server.wait_run(execution["run_id"])["status"] == "cancelled"
