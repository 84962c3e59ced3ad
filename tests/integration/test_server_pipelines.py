"""Pachyderm pipelines over the server's REST API and ``--remote``, against a real
server on 127.0.0.1: leads create, update and delete; viewers read pipelines, jobs and
datums; a wrong spec is a 422 naming file:line:col (the attacks on these routes:
tests/security/test_pipelines_api.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import ROLES, Server, make_server

pytestmark = pytest.mark.integration
repo = integration.repo


def spec(name: str, repo_name: str = "images", cmd: str = "cp -r /pfs/in/. /pfs/out/") -> str:
    return json.dumps(
        {
            "pipeline": {"name": name},
            "transform": {"cmd": ["sh"], "stdin": [cmd]},
            "input": {"pfs": {"repo": repo_name, "glob": "/*", "name": "in"}},
        },
        indent=2,
    )


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("pipelines"), None)
    server.start(workers=0)
    yield server
    server.stop()


def test_leads_create_viewers_read(srv: Server) -> None:
    with srv.api("lead") as lead, srv.api("member") as member, srv.api("viewer") as viewer:
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        body = {"spec": spec("copy"), "file": "copy.json"}
        assert member.post("/pipelines", json=body).status_code == 403
        created = lead.post("/pipelines", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["pipelines"] == ["copy"]
        again = lead.post("/pipelines", json=body)
        assert again.status_code == 400 and "pipeline update" in again.json()["detail"]
        assert viewer.get("/datasets/copy").status_code == 200  # its output dataset
        listed = viewer.get("/pipelines").json()
        assert [(p["name"], p["version"], p["inputs"]) for p in listed] == [("copy", 1, ["images"])]
        updated = lead.put("/pipelines", json={**body, "reprocess": True})
        assert updated.status_code == 200, updated.text
        inspected = viewer.get("/pipelines/copy").json()
        assert inspected["version"] == 2 and inspected["output"]["dataset"] == "copy"
        assert inspected["input"]["pfs"]["repo"] == "images"
        assert viewer.get("/jobs").json() == []
        assert viewer.get("/jobs", params={"pipeline": "copy"}).json() == []
        assert viewer.get("/jobs/abcd1234").status_code == 404
        assert viewer.get("/pipelines/nothing").status_code == 404
        assert viewer.delete("/pipelines/copy").status_code == 403
        assert lead.delete("/pipelines/copy", params={"keep_dataset": "true"}).is_success
        assert viewer.get("/pipelines").json() == []
        assert viewer.get("/datasets/copy").status_code == 200


def test_a_wrong_spec_is_422_with_its_position(srv: Server) -> None:
    with srv.api("lead") as lead:
        unknown = lead.post("/pipelines", json={"spec": spec("lost", "nowhere"), "file": "p.json"})
        assert unknown.status_code == 422, unknown.text
        detail = unknown.json()["detail"]
        assert detail.startswith("p.json:") and "'nowhere', which does not exist" in detail
        broken = lead.post("/pipelines", json={"spec": '{"pipeline": ', "file": "b.json"})
        assert broken.status_code == 422 and broken.json()["detail"].startswith("b.json:1:")
        yaml = "pipeline:\n  name: y\ntransform:\n  cmd: [true]\n  sidecar: {}\n"
        refused = lead.post("/pipelines", json={"spec": yaml, "file": "y.yaml"})
        assert refused.status_code == 422 and refused.json()["detail"].startswith("y.yaml:")
        assert lead.get("/pipelines").json() == []


def test_the_cli_with_remote(srv: Server, repo: Repo) -> None:
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{srv.url}"\nproject = "demo"\n')
    repo.pipeline("jobs:\n  j:\n    steps:\n      - run: 'true'\n")
    repo.write("edges.json", spec("edges", "photos"))
    repo.commit()
    lead, member, viewer = ({"CONVEYOR_TOKEN": srv.tokens[who]} for who in ROLES[::-1])

    def cli(env: dict[str, str], *args: str) -> str:
        result = repo.run(*args, "--remote", env=env)
        assert result.code == 0, result.err
        return result.out

    cli(lead, "data", "create", "photos")
    refused = repo.run("pipeline", "create", "-f", "edges.json", "--remote", env=member)
    assert refused.code == 2 and "403" in refused.err
    assert json.loads(cli(lead, "pipeline", "create", "-f", "edges.json", "--json")) == {
        "pipelines": ["edges"],
        "updated": False,
        "reprocess": False,
    }
    cli(lead, "pipeline", "update", "-f", "edges.json", "--reprocess")
    rows = json.loads(cli(viewer, "pipeline", "list", "--json"))
    assert [(r["name"], r["version"]) for r in rows] == [("edges", 2)]
    assert "pipeline edges  version 2" in cli(viewer, "pipeline", "inspect", "edges")
    assert json.loads(cli(viewer, "job", "list", "--json")) == []
    missing = repo.run("job", "inspect", "abcd1234", "--remote", env=viewer)
    assert missing.code == 2 and "no job" in missing.err
    missing = repo.run("datum", "list", "abcd1234", "--remote", env=viewer)
    assert missing.code == 2
    repo.write("bad.json", spec("bad", "nowhere"))
    bad = repo.run("pipeline", "create", "-f", "bad.json", "--remote", env=lead)
    assert bad.code == 2 and "bad.json:" in bad.err and "Traceback" not in bad.err
    cli(lead, "pipeline", "delete", "edges")
    assert json.loads(cli(viewer, "pipeline", "list", "--json")) == []
    assert "edges" not in {d["name"] for d in json.loads(cli(viewer, "data", "ls", "--json"))}
