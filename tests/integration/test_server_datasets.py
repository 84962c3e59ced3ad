"""Datasets over the server's REST API, against a real server on 127.0.0.1: leads create,
members put, viewers read; the same commits, branches and ancestry as the local CLI (the
attacks on these routes: tests/security/test_datasets_api.py)."""

from __future__ import annotations

from collections.abc import Iterator

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
