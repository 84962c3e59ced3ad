"""Endpoints that take files, on a real server: a multipart call whose file part reaches
a warm worker as a path and an elastic run as a file of its workspace (with form fields
typed like JSON ones), a file output downloaded from the link in the answer, and the
CLI's ``-i NAME=@FILE``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.server.deployments.callfiles import CALLS_REF
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  model: {type: str, default: ""}
  scale: {type: int, default: 1}
jobs:
  serve:
    steps:
      - id: measure
        python: measure:measure
        outputs: [echo.bin]
        env:
          MODEL: ${{ params.model }}
          SCALE: ${{ params.scale }}
"""

MODULE = """\
import hashlib
import os


def measure(model=None, scale=None):
    model = model or os.environ["MODEL"]
    scale = int(os.environ.get("SCALE", "1")) if scale is None else scale
    with open(model, "rb") as handle:
        data = handle.read()
    with open("echo.bin", "wb") as handle:
        handle.write(data[::-1])
    return {"size": len(data) * scale, "sha256": hashlib.sha256(data).hexdigest(),
            "name": os.path.basename(model)}
"""

INPUTS = [
    {"name": "model", "type": "file", "accept": ["application/octet-stream", "image/*"]},
    {"name": "scale", "type": "integer", "required": False},
]
PAYLOAD = bytes(range(256)) * 40


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=2)
    yield srv
    srv.stop()


def setup(repo: Repo, server: Server, name: str, mode: str, **settings: Any) -> dict[str, Any]:
    repo.pipeline(PIPELINE)
    repo.write("measure.py", MODULE)
    repo.commit("measure")
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")
    body = {"name": name, "mode": mode, "settings": {"inputs": INPUTS, **settings}}
    with server.api("lead") as lead:
        answer = lead.post("/deployments", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def upload(
    server: Server, name: str, files: dict[str, Any], data: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/{name}/call",
        files=files,
        data=data or {},
        headers={"Authorization": f"Bearer {server.tokens['member']}"},
        timeout=60,
    )


def test_a_low_latency_endpoint_takes_a_file_part(repo: Repo, server: Server) -> None:
    setup(repo, server, "fast", "low_latency", pool_size=1)
    sent = {"model": ("../../server.key", PAYLOAD, "application/octet-stream")}
    answer = upload(server, "fast", sent, {"scale": "3"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["outputs"]["result"]
    assert result == {
        "size": len(PAYLOAD) * 3,
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "name": "model",  # the input's name, never the client's filename
    }
    with server.api("viewer") as viewer:
        execution = viewer.get("/deployments/fast/executions").json()["executions"][0]
    assert execution["inputs"] == {
        "model": {
            "file": {
                "size": len(PAYLOAD),
                "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
                "type": "application/octet-stream",
            }
        },
        "scale": 3,
    }
    # JSON calls still work for the other inputs; a file sent as JSON names the input
    as_json = httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/fast/call",
        json={"model": "x", "scale": 1},
        headers={"Authorization": f"Bearer {server.tokens['member']}"},
    )
    assert as_json.status_code == 422
    assert as_json.json()["input"] == "model" and as_json.json()["expected"] == "file"
    assert "multipart/form-data" in as_json.json()["detail"]


def test_a_low_latency_endpoint_returns_a_file_output(repo: Repo, server: Server) -> None:
    """As an elastic one does: a ``download`` link that the endpoint token and a viewer
    open, each call its own file (never the previous call's), a secret in it masked."""
    with server.api("lead") as lead:
        assert lead.put("/secrets/TOKEN", json={"value": "s3cret-value"}).status_code < 300
    outputs = [
        {"name": "size", "key": "size"},
        {"name": "echo", "source": "file", "path": "echo.bin"},
    ]
    created = setup(repo, server, "fastfile", "low_latency", pool_size=1, outputs=outputs)
    token = {"Authorization": f"EndpointToken {created['token']}"}
    answers = []
    for sent in (PAYLOAD, b"\nsay eulav-terc3s to me\n"):
        answer = upload(server, "fastfile", {"model": ("m.bin", sent, "image/png")})
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    first, second = (a["outputs"]["echo"] for a in answers)
    assert first["size"] == len(PAYLOAD) and answers[0]["outputs"]["size"] == len(PAYLOAD)
    assert first["download"].endswith(f"/executions/{answers[0]['execution_id']}/outputs/echo")
    got = httpx.get(f"{server.url}{first['download']}", headers=token)
    assert got.status_code == 200 and got.content == PAYLOAD[::-1]
    masked = httpx.get(f"{server.url}{second['download']}", headers=token)
    assert masked.status_code == 200 and b"s3cret-value" not in masked.content
    assert b"em ot" in masked.content  # the rest of the text is there
    viewer = {"Authorization": f"Bearer {server.tokens['viewer']}"}
    assert httpx.get(f"{server.url}{first['download']}", headers=viewer).content == PAYLOAD[::-1]
    wrong = httpx.get(
        f"{server.url}{first['download']}", headers={"Authorization": "EndpointToken x"}
    )
    assert wrong.status_code == 401
    none = httpx.get(f"{server.url}{first['download'].replace('/echo', '/size')}", headers=token)
    assert none.status_code == 404


def test_an_elastic_endpoint_gets_the_file_and_returns_one(repo: Repo, server: Server) -> None:
    outputs = [
        {"name": "size", "key": "size"},
        {"name": "echo", "source": "file", "path": "echo.bin"},
    ]
    created = setup(repo, server, "slow", "elastic", outputs=outputs)
    answer = upload(server, "slow", {"model": ("w.bin", PAYLOAD, "image/png")}, {"scale": "2"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outputs"]["size"] == len(PAYLOAD) * 2
    echo = body["outputs"]["echo"]
    assert echo["size"] == len(PAYLOAD) and echo["url"].endswith("/artifacts/echo.bin")
    with server.api("viewer") as viewer:
        downloaded = viewer.get(echo["url"].removeprefix("/api/v1/projects/demo"))
        run = server.wait_run(body["run_id"])
    assert downloaded.status_code == 200 and downloaded.content == PAYLOAD[::-1]
    digest = hashlib.sha256(PAYLOAD).hexdigest()[:16]
    assert run["params"]["model"] == f".conveyor/inputs/{digest}/model"
    # the endpoint's caller fetches it with the endpoint token (nothing else opens)
    download = f"{server.url}{echo['download']}"
    assert echo["download"].endswith(f"/executions/{body['execution_id']}/outputs/echo")
    got = httpx.get(download, headers={"Authorization": f"EndpointToken {created['token']}"})
    assert got.status_code == 200 and got.content == PAYLOAD[::-1]
    wrong = httpx.get(download, headers={"Authorization": "EndpointToken nope"})
    assert wrong.status_code == 401
    assert httpx.get(download).status_code == 401
    viewer_token = {"Authorization": f"Bearer {server.tokens['viewer']}"}
    assert httpx.get(download, headers=viewer_token).content == PAYLOAD[::-1]
    for other in ("size", "nope"):
        missing = httpx.get(
            download.replace("/outputs/echo", f"/outputs/{other}"), headers=viewer_token
        )
        assert missing.status_code == 404, missing.text
    assert run["commit"] != created["commit"]  # the call's files over the deployment's commit


def test_another_file_with_the_same_fields_is_another_answer(repo: Repo, server: Server) -> None:
    """The file is the input: a second call with other bytes and the same form fields is
    not served from the first call's cache (the file's path in the run names its
    content, so the step that reads it has another key)."""
    setup(repo, server, "twice", "elastic", outputs=[{"name": "sha256", "key": "sha256"}])
    answers = [
        upload(server, "twice", {"model": ("m.bin", data, "image/png")}, {"scale": "1"})
        for data in (PAYLOAD, PAYLOAD[:99], PAYLOAD)
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    sums = [a.json()["outputs"]["sha256"] for a in answers]
    assert sums == [hashlib.sha256(d).hexdigest() for d in (PAYLOAD, PAYLOAD[:99], PAYLOAD)]


def test_retention_prunes_a_calls_run_with_its_files(repo: Repo, server: Server) -> None:
    """The call ref that kept a call's files reachable goes with its run; the call's
    download is then a clean 410, for its endpoint token as for a viewer."""
    outputs = [{"name": "echo", "source": "file", "path": "echo.bin"}]
    created = setup(repo, server, "kept", "elastic", outputs=outputs)
    with server.api("lead") as lead:
        assert lead.put("/settings", json={"retention": {"keep_last": 1}}).status_code == 200
    # another file each time (the same file in the same second is the same call commit,
    # which the kept run would share) and another scale (a cache hit would keep the first
    # run: the second restored its outputs from it)
    first = upload(server, "kept", {"model": ("m.bin", PAYLOAD, "image/png")}, {"scale": "1"})
    commits = [server.wait_run(first.json()["run_id"])["commit"]]
    second = upload(server, "kept", {"model": ("m.bin", PAYLOAD[:99], "image/png")}, {"scale": "2"})
    assert first.status_code == second.status_code == 200, second.text
    commits.append(server.wait_run(second.json()["run_id"])["commit"])  # the one kept
    bare = server.data / "projects/demo/repo.git"
    with server.api("viewer") as viewer:
        deadline = time.monotonic() + 60
        while viewer.get(f"/runs/{first.json()['run_id']}").status_code != 404:
            assert time.monotonic() < deadline, "retention never deleted the first call's run"
            time.sleep(0.2)
    refs = git(bare, "for-each-ref", "--format=%(refname)", CALLS_REF).stdout.split()
    assert refs == [CALLS_REF + commits[1]]  # the kept run's call ref only
    reachable = git(bare, "rev-list", "--all").stdout.split()
    holders = git(bare, "for-each-ref", "--contains", commits[0]).stdout
    assert commits[0] not in reachable and commits[1] in reachable, holders
    token = {"Authorization": f"EndpointToken {created['token']}"}
    gone = httpx.get(f"{server.url}{first.json()['outputs']['echo']['download']}", headers=token)
    assert gone.status_code == 410 and "was deleted" in gone.json()["detail"], gone.text
    kept = httpx.get(f"{server.url}{second.json()['outputs']['echo']['download']}", headers=token)
    assert kept.status_code == 200 and kept.content == PAYLOAD[:99][::-1]


def test_the_cli_sends_a_file_with_at(repo: Repo, server: Server, tmp_path: Path) -> None:
    setup(repo, server, "cli", "low_latency", pool_size=1)
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    weights = tmp_path / "weights.bin"
    weights.write_bytes(PAYLOAD)
    member = {"CONVEYOR_TOKEN": server.tokens["member"]}
    called = repo.run(
        "deploy", "call", "cli", "-i", f"model=@{weights}", "-i", "scale=2", "--json", env=member
    )
    assert called.code == 0, called.err
    assert json.loads(called.out)["outputs"]["result"]["size"] == len(PAYLOAD) * 2
    missing = repo.run("deploy", "call", "cli", "-i", "model=@/no/such/file", env=member)
    assert missing.code == 2 and "/no/such/file" in missing.err
