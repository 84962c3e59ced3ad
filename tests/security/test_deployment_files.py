"""Attacks on endpoints that take files (multipart calls), against a real server: a
client filename that climbs out or is absolute (never used as a path), a part of a type
the input does not accept, a file part for a typed input and a JSON value for a file
input, a body type that is neither JSON nor multipart, a multipart body over the
deployment's limit, a malformed body, too many parts, an input sent twice. Each is a
4xx JSON answer; none reaches the function or writes a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, make_server
from tests.integration.test_deployments_files import INPUTS, setup, upload

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=1)
    yield srv
    srv.stop()


def _post(server: Server, content: bytes, kind: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/projects/demo/deployments/files/call",
        content=content,
        headers={"Authorization": f"Bearer {server.tokens['member']}", "Content-Type": kind},
        timeout=60,
    )


def test_a_client_filename_is_never_a_path(repo: Repo, server: Server, tmp_path: Path) -> None:
    setup(repo, server, "files", "low_latency", pool_size=1)
    target = tmp_path / "planted"
    for name in ("../../../../planted", str(target), "..", "a\x00b", "planted/../.."):
        answer = upload(server, "files", {"model": (name, b"abc", "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"]["result"]["name"] == "model"
    long = upload(server, "files", {"model": ("x" * 20000, b"abc", "image/png")})
    assert long.status_code in (200, 400), long.text  # a header that long may be refused
    assert long.status_code == 200 or "multipart body" in long.json()["detail"]
    assert not target.exists()
    assert not list(server.data.rglob("planted"))
    with server.api("viewer") as viewer:
        executions = viewer.get("/deployments/files/executions").json()["executions"]
    assert all("planted" not in str(e["inputs"]) for e in executions)


def test_refused_parts_are_a_4xx_naming_the_input(repo: Repo, server: Server) -> None:
    setup(repo, server, "files", "low_latency", pool_size=1, max_body=4096)
    cases = [
        ({"model": ("m", b"x", "text/html")}, {}, "model", "file"),
        (
            {"model": ("m", b"x", "image/png"), "scale": ("s", b"2", "image/png")},
            {},
            "scale",
            "integer",
        ),
        ({"model": ("m", b"x", "image/png")}, {"scale": "two"}, "scale", "integer"),
        ({"model": ("m", b"x", "image/png"), "other": ("o", b"x", "image/png")}, {}, "other", None),
        ({}, {"scale": "2"}, "model", "file"),
    ]
    for files, fields, name, expected in cases:
        answer = upload(server, "files", files, fields)
        assert answer.status_code == 422, (files, fields, answer.text)
        assert answer.json()["input"] == name and answer.json()["expected"] == expected
        assert name in answer.json()["detail"]
    twice = _post(
        server,
        b'--b\r\nContent-Disposition: form-data; name="scale"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="scale"\r\n\r\n2\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    )
    assert twice.status_code == 422 and twice.json()["input"] == "scale"
    assert "sent twice" in twice.json()["detail"]
    too_big = upload(server, "files", {"model": ("m", b"x" * 5000, "image/png")})
    assert too_big.status_code == 413 and "4096 bytes" in too_big.json()["detail"]
    xml = _post(server, b"<model/>", "application/xml")
    assert xml.status_code == 415 and "multipart/form-data" in xml.json()["detail"]
    broken = _post(server, b"--b\r\nno headers at all", "multipart/form-data")
    assert broken.status_code == 400 and "multipart" in broken.json()["detail"]
    anonymous = httpx.post(  # never parsed before the caller is let in
        f"{server.url}/api/v1/projects/demo/deployments/files/call",
        content=b"--b\r\nno headers at all",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert anonymous.status_code == 401, anonymous.text
    many = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n'.encode()
        for i in range(150)
    )
    with server.api("lead") as lead:  # room for the parts: the count refuses them
        roomy = {"settings": {"inputs": INPUTS, "pool_size": 1, "max_body": 65536}}
        assert lead.patch("/deployments/files", json=roomy).status_code == 200
    crowded = _post(server, many + b"--b--\r\n", "multipart/form-data; boundary=b")
    assert crowded.status_code == 400 and "multipart" in crowded.json()["detail"]
    with server.api("viewer") as viewer:
        assert viewer.get("/deployments/files").json()["executions"] == {}


def test_the_outputs_route_opens_to_its_own_deployments_token_only(
    repo: Repo, server: Server
) -> None:
    token = setup(repo, server, "files", "low_latency", pool_size=1)["token"]
    with server.api("lead") as lead:
        other = lead.post("/deployments", json={"name": "other"}).json()["token"]
    answer = upload(server, "files", {"model": ("m", b"abc", "image/png")})
    execution = answer.json()["execution_id"]
    base = f"{server.url}/api/v1/projects/demo/deployments"
    mine = f"{base}/files/executions/{execution}/outputs/result"
    for header, status in (
        (f"EndpointToken {other}", 401),  # another deployment's token
        (f"Bearer {token}", 401),  # the endpoint token is no API token
        (f"Bearer {server.tokens['outsider']}", 403),
        (None, 401),
        (f"EndpointToken {token}", 404),  # a value, not a file: nothing to download
    ):
        got = httpx.get(mine, headers={"Authorization": header} if header else {})
        assert got.status_code == status, (header, got.text)
    # its execution under another deployment's path, with that deployment's token
    crossed = httpx.get(
        f"{base}/other/executions/{execution}/outputs/result",
        headers={"Authorization": f"EndpointToken {other}"},
    )
    assert crossed.status_code == 404
    traversal = httpx.get(
        f"{base}/files/executions/..%2F..%2F..%2Fruns/outputs/x",
        headers={"Authorization": f"EndpointToken {token}"},
    )
    assert traversal.status_code == 404


def test_a_warm_file_output_outside_the_checkout_is_refused(repo: Repo, server: Server) -> None:
    """A low_latency output mapping whose path climbs out of the checkout, or is
    absolute, fails the call in one sentence; nothing outside is read or returned."""
    for i, path in enumerate(("../../../etc/hostname", "/etc/hostname")):
        outputs = [{"name": "leak", "source": "file", "path": path}]
        setup(repo, server, f"leak{i}", "low_latency", pool_size=1, outputs=outputs)
        answer = upload(server, f"leak{i}", {"model": ("m", b"abc", "image/png")})
        assert 400 <= answer.status_code < 600 and answer.status_code != 200, answer.text
        assert "outside the checkout" in answer.text
        assert "download" not in answer.text
