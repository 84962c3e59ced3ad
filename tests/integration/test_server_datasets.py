"""Datasets over the server's REST API, against a real server on 127.0.0.1: leads create,
members put, viewers read; the same commits, branches and ancestry as the local CLI (the
attacks on these routes: tests/security/test_datasets_api.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import ROLES, Server, make_server

pytestmark = pytest.mark.integration
repo = integration.repo


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


def test_the_cli_with_remote(srv: Server, repo: Repo, tmp_path: Path) -> None:
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{srv.url}"\nproject = "demo"\n')
    repo.pipeline("jobs:\n  j:\n    steps:\n      - run: 'true'\n")
    repo.commit()
    lead, member, viewer = ({"CONVEYOR_TOKEN": srv.tokens[who]} for who in ROLES[::-1])
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.txt").write_text("two\n")

    def cli(env: dict[str, str], *args: str) -> str:
        result = repo.run("data", *args, "--remote", env=env)
        assert result.code == 0, result.err
        return result.out

    cli(lead, "create", "remote-ds")
    assert repo.run("data", "create", "x", "--remote", env=member).code == 2  # leads create
    first = json.loads(cli(member, "put", "remote-ds:/dir/", str(tmp_path / "a.txt"), "--json"))
    assert first["dataset"] == "remote-ds" and first["files"] == 1
    cli(member, "put", "remote-ds:/dir/a.txt", str(tmp_path / "b.txt"), "-a", "-m", "more")
    assert cli(viewer, "get", "remote-ds:/dir/a.txt") == "one\ntwo\n"
    assert cli(viewer, "get", "remote-ds@master^:/dir/a.txt") == "one\n"
    cli(viewer, "get", "remote-ds:/dir/a.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "one\ntwo\n"
    log = json.loads(cli(viewer, "log", "remote-ds", "--json"))
    assert [c["message"] for c in log] == ["more", ""]
    listed = json.loads(cli(viewer, "ls", "remote-ds:/dir", "--json"))
    assert [e["path"] for e in listed] == ["/dir/a.txt"]
    change = json.loads(cli(viewer, "diff", "remote-ds@master^", "remote-ds", "--json"))
    assert [c["new"]["path"] for c in change["changed"]] == ["/dir/a.txt"]
    cli(member, "branch", "remote-ds", "v1", "--head", "remote-ds^")
    assert json.loads(cli(viewer, "branch", "remote-ds", "--json"))["v1"] == log[1]["id"]
    assert "remote-ds" in {d["name"] for d in json.loads(cli(viewer, "ls", "--json"))}
    # a directory: one commit of all its files, placed as a local put places them
    photos = tmp_path / "photos"
    (photos / "cats").mkdir(parents=True)
    (photos / "cats" / "tom.txt").write_text("meow\n")
    (photos / "run.sh").write_text("#!/bin/sh\n")
    (photos / "run.sh").chmod(0o755)
    before = len(json.loads(cli(viewer, "log", "remote-ds", "--json")))
    tree = json.loads(cli(member, "put", "remote-ds:/in", "-r", str(photos), "-m", "d", "--json"))
    assert tree["files"] == 3 and tree["message"] == "d"
    assert len(json.loads(cli(viewer, "log", "remote-ds", "--json"))) == before + 1
    listed = json.loads(cli(viewer, "ls", "remote-ds:/in", "--json"))
    assert [e["path"] for e in listed] == ["/in/cats", "/in/run.sh"]
    assert cli(viewer, "get", "remote-ds:/in/cats/tom.txt") == "meow\n"
    named = json.loads(cli(member, "put", "remote-ds", "-r", str(photos), "--json"))
    assert named["files"] == 5  # without a path: under the directory's own name
    assert cli(viewer, "get", "remote-ds:/photos/cats/tom.txt") == "meow\n"
    unrecursive = repo.run("data", "put", "remote-ds", str(photos), "--remote", env=member)
    assert unrecursive.code == 2 and "add --recursive" in unrecursive.err
    cli(member, "delete", "remote-ds:/in")
    cli(member, "delete", "remote-ds:/photos")
    cli(member, "delete", "remote-ds:/dir/a.txt")
    assert json.loads(cli(viewer, "inspect", "remote-ds", "--json"))["commit"]["files"] == 0
    cli(lead, "delete", "remote-ds", "--yes")
    assert "remote-ds" not in {d["name"] for d in json.loads(cli(viewer, "ls", "--json"))}


def test_server_gc_keeps_dataset_blobs_until_the_dataset_goes(srv: Server) -> None:
    from tests.integration.server_support import conveyor

    content = b"kept by a dataset commit\n"
    with srv.api("lead") as lead:
        assert lead.post("/datasets", json={"name": "gc-ds"}).status_code == 201
        assert lead.put("/datasets/gc-ds/files/f.txt", content=content).is_success
        json.loads(conveyor(*srv.admin_args(), "gc", "--grace", "0", "--json"))
        assert lead.get("/datasets/gc-ds/files/f.txt").content == content
        assert lead.delete("/datasets/gc-ds").is_success
    swept = json.loads(conveyor(*srv.admin_args(), "gc", "--grace", "0", "--json"))
    assert swept["removed"] >= 2  # the file and the tree, no longer named by any commit
