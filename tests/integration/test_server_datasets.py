"""Datasets over the server's REST API, against a real server on 127.0.0.1: leads create,
members put, viewers read; the same commits, branches and ancestry as the local CLI; and
the attacks: hostile names and paths, bodies over the cap, another project's datasets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.server_support import Server, make_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("datasets"), None)
    server.start(workers=0, extra=("--max-dataset-body", "100000"))
    yield server
    server.stop()


def test_lead_creates_member_puts_viewer_reads(srv: Server) -> None:
    with srv.api("lead") as lead, srv.api("member") as member, srv.api("viewer") as viewer:
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        first = member.put("/datasets/images/files/raw/a.txt", content=b"one\n")
        assert first.status_code == 201, first.text
        assert first.json()["dataset"] == "images"  # the project's name, not the records' key
        second = member.put(
            "/datasets/images/files/raw/a.txt", content=b"two\n", params={"append": "true"}
        )
        assert second.json()["parent"] == first.json()["id"]
        assert viewer.get("/datasets/images/files/raw/a.txt").content == b"one\ntwo\n"
        old = viewer.get("/datasets/images/files/raw/a.txt", params={"ref": "master^"})
        assert old.content == b"one\n"
        log = viewer.get("/datasets/images/log").json()
        assert [c["id"] for c in log] == [second.json()["id"], first.json()["id"]]
        listed = viewer.get("/datasets/images/ls", params={"path": "/raw"}).json()
        assert [(e["path"], e["size"]) for e in listed] == [("/raw/a.txt", 8)]
        globbed = viewer.get("/datasets/images/glob", params={"pattern": "/*"}).json()
        assert [g["path"] for g in globbed] == ["/raw"]
        change = viewer.get("/datasets/images/diff", params={"from": "master~1", "to": "master"})
        assert [c["new"]["path"] for c in change.json()["changed"]] == ["/raw/a.txt"]
        assert member.put("/datasets/images/branches/v1", json={"head": "master^"}).is_success
        assert viewer.get("/datasets/images/branches").json() == {
            "master": second.json()["id"],
            "v1": first.json()["id"],
        }
        inspected = viewer.get("/datasets/images", params={"ref": "v1"}).json()
        assert inspected["commit"]["files"] == 1 and inspected["commit"]["provenance"] == {}
        # viewers do not write, members do not delete datasets
        assert viewer.put("/datasets/images/files/x", content=b"x").status_code == 403
        assert member.delete("/datasets/images").status_code == 403
        assert member.delete("/datasets/images/files/raw/a.txt").is_success
        assert viewer.get("/datasets/images/ls").json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/datasets/images/files/%2e%2e/%2e%2e/etc/passwd"),
        ("PUT", "/datasets/images/files/a/%2e%2e/%2e%2e/b"),
        ("PUT", "/datasets/..%2fx/files/a"),
        ("GET", "/datasets/images/files/%2e%2e/x"),
        ("GET", "/datasets/images/log?ref=..%2f..%2fx"),
        ("GET", "/datasets/images/log?ref=" + "~9" * 30000),
    ],
)
def test_hostile_names_and_paths_are_refused(srv: Server, method: str, path: str) -> None:
    with srv.api("lead") as lead:
        lead.post("/datasets", json={"name": "images"})
        response = lead.request(method, path, content=b"x" if method == "PUT" else None)
        assert response.status_code in (400, 404, 414, 422), (path, response.text)
        assert "Traceback" not in response.text


def test_a_body_over_the_cap_is_refused_and_commits_nothing(srv: Server) -> None:
    with srv.api("lead") as lead:
        lead.post("/datasets", json={"name": "big"})
        response = lead.put("/datasets/big/files/f", content=b"x" * 200_000)
        assert response.status_code == 413
        chunked = lead.put("/datasets/big/files/f", content=iter([b"x" * 60_000] * 3))
        assert chunked.status_code == 413
        assert lead.get("/datasets/big").json()["commit"] is None
        assert lead.post("/datasets", json={"name": "n" * 64}).status_code == 422


def test_another_project_sees_none_of_demos_datasets(srv: Server) -> None:
    with srv.api("lead") as lead:
        lead.post("/datasets", json={"name": "shared-name"})
        assert lead.put("/datasets/shared-name/files/f", content=b"demo").is_success
    headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
    with httpx.Client(base_url=f"{srv.url}/api/v1", headers=headers, timeout=30) as admin:
        assert admin.post("/projects", json={"name": "other"}).status_code == 201
        assert admin.get("/projects/other/datasets").json() == []
        missing = admin.get("/projects/other/datasets/shared-name/files/f")
        assert missing.status_code == 404, missing.text
        assert admin.post("/projects/other/datasets", json={"name": "shared-name"}).is_success
        empty = admin.get("/projects/other/datasets/shared-name").json()
        assert empty["commit"] is None  # its own dataset of that name, not demo's
    headers = {"Authorization": f"Bearer {srv.tokens['outsider']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as outsider:
        response = outsider.get("/api/v1/projects/demo/datasets/shared-name/files/f")
        assert response.status_code == 403
