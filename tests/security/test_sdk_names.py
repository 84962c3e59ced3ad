"""Run ids, step names and output paths that reach the SDK are data: on a server they
are quoted URL segments (a ``../``, ``?`` or ``#`` never changes which route is asked),
and on this machine they never become a path outside the cache."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conveyor.errors import NotFoundError, RemoteError
from conveyor.sdk.backend import cache_place
from conveyor.sdk.client import Client
from conveyor.sdk.client_remote import RemoteBackend
from conveyor.sdk.remote import RemoteClient
from conveyor.sdk.settings import RemoteSettings

DIGEST = "cd" * 32
EVIL_STEP = "../../admin?x=1#frag"
EVIL_OUTPUT = "out/a?b#c/./x.csv"
ESCAPING = "out/../../../etc/passwd"


def _client(seen: list[httpx.Request], tmp_path: Path) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.raw_path.decode()
        if path.endswith("/artifacts?limit=5000"):
            return httpx.Response(200, json={"files": [{"path": ESCAPING}]})
        if "/artifacts/" in path or "/logs/" in path:
            return httpx.Response(200, content=b"data", headers={"content-type": "text/plain"})
        step = {"id": EVIL_STEP, "job": "..", "status": "succeeded", "log": "x"}
        step["outputs"] = [
            {"path": path, "digest": DIGEST, "kind": "file", "size": 4}
            for path in (EVIL_OUTPUT, ESCAPING)
        ]
        return httpx.Response(200, json={"id": "../r?1", "status": "succeeded", "steps": [step]})

    settings = RemoteSettings("http://server.invalid", "demo")
    remote = RemoteClient(settings, "t", transport=httpx.MockTransport(answer), retry_delays=())
    return Client.over(RemoteBackend(remote, cache=tmp_path / "cache"))


def test_names_from_the_caller_and_the_server_are_quoted_segments(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    client = _client(seen, tmp_path)
    run = client.get_run("../r?1")
    step = run.step(EVIL_STEP)
    assert step.logs() == "data"
    assert run.output(EVIL_OUTPUT).read_bytes() == b"data"
    run.cancel()
    client.lineage("out/a?b&c=d#e")
    paths = [r.url.raw_path.decode() for r in seen]
    base = "/api/v1/projects/demo"
    assert paths == [
        f"{base}/runs/..%2Fr%3F1",
        f"{base}/runs/..%2Fr%3F1/logs/..%2F..%2Fadmin%3Fx%3D1%23frag",
        f"{base}/runs/..%2Fr%3F1/artifacts/out/a%3Fb%23c/x.csv",
        f"{base}/runs/..%2Fr%3F1/cancel",
        f"{base}/lineage?path=out%2Fa%3Fb%26c%3Dd%23e",
    ]
    assert all(r.url.host == "server.invalid" for r in seen)
    client.close()


def test_a_server_cannot_place_a_file_outside_the_cache_or_the_destination(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []
    client = _client(seen, tmp_path)
    run = client.get_run("r")
    placed = run.output(EVIL_OUTPUT).local_path()
    assert placed == tmp_path / "cache" / DIGEST / "x.csv"
    assert placed.read_bytes() == b"data"
    for escaping in (lambda: run.output(ESCAPING).read_bytes(), lambda: run.fetch(tmp_path)):
        with pytest.raises(RemoteError, match="unsafe path"):
            escaping()
    assert not (tmp_path / "etc").exists()
    assert all("etc" not in r.url.raw_path.decode() for r in seen)
    for name in (".", ".."):  # a URL would resolve them away: another route
        with pytest.raises(NotFoundError, match="names no run or step"):
            client.get_run(name)
        with pytest.raises(NotFoundError, match="names no run or step"):
            list(client._backend.log("r", name, None))
    client.close()


@pytest.mark.parametrize(
    "output",
    [
        {"path": "out/x", "digest": "../../etc"},
        {"path": "out/x", "digest": DIGEST + "/.."},
        {"path": "..", "digest": DIGEST},
        {"path": "out/..", "digest": DIGEST},
        {"path": "/", "digest": DIGEST},
        {"path": "a\\..\\b", "digest": DIGEST},
    ],
)
def test_a_cache_place_is_made_of_a_hex_digest_and_one_plain_name(
    output: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(RemoteError, match="refused an output record"):
        cache_place(tmp_path, output)


def test_a_step_name_that_names_no_step_is_not_found_not_followed(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    run = _client(seen, tmp_path).get_run("r")
    with pytest.raises(NotFoundError, match=r"has no step '\.\./etc/passwd'"):
        run.step("../etc/passwd")
