"""Attacks on the Pachyderm pipeline routes of a real server on 127.0.0.1: a spec over
the size cap, nested past the reader's depth, hostile pipeline and job names, another
project's pipelines."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.server_support import Server, make_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("pach-attacks"), None)
    server.start(workers=0)
    yield server
    server.stop()


def _spec(name: str) -> str:
    return json.dumps(
        {
            "pipeline": {"name": name},
            "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "images", "glob": "/*"}},
        }
    )


def test_oversized_and_deep_specs_are_refused_before_anything_is_recorded(srv: Server) -> None:
    with srv.api("lead") as lead:
        lead.post("/datasets", json={"name": "images"})
        huge = lead.post("/pipelines", json={"spec": " " * (2 * 1024 * 1024), "file": "h.json"})
        assert huge.status_code in (413, 422)  # the body cap, or the spec cap
        deep = '{"pipeline": {"name": "d"}, "transform": {"env": ' + '{"a": ' * 5000
        refused = lead.post("/pipelines", json={"spec": deep + "1" + "}" * 5002, "file": "d"})
        assert refused.status_code == 422 and "deeper than" in refused.json()["detail"]
        assert "Traceback" not in refused.text
        assert lead.get("/pipelines").json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/pipelines/..%2f..%2fetc"),
        ("DELETE", "/pipelines/..%2fdatasets"),
        ("GET", "/pipelines/" + "p" * 300),
        ("GET", "/jobs/..%2f..%2fserver.db"),
        ("GET", "/jobs/*"),
        ("GET", "/jobs/abc%00def/datums"),
        ("GET", "/jobs?pipeline=..%2fx"),
        ("GET", "/jobs/abcd1234/datums/..%2f..%2f..%2fserver.key/log"),
    ],
)
def test_hostile_names_are_refused(srv: Server, method: str, path: str) -> None:
    with srv.api("lead") as lead:
        response = lead.request(method, path)
        assert response.status_code in (400, 404, 422), (path, response.text)
        assert "Traceback" not in response.text


def test_a_spec_names_no_file_outside_its_text(srv: Server) -> None:
    """The ``file`` of a request only names the spec in errors: nothing is read there."""
    with srv.api("lead") as lead:
        answer = lead.post("/pipelines", json={"spec": "{", "file": "/etc/passwd"})
        assert answer.status_code == 422 and "root:" not in answer.text


def test_another_project_sees_none_of_demos_pipelines(srv: Server) -> None:
    with srv.api("lead") as lead:
        lead.post("/datasets", json={"name": "images"})
        created = lead.post("/pipelines", json={"spec": _spec("mine"), "file": "m.json"})
        assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
    with httpx.Client(base_url=f"{srv.url}/api/v1", headers=headers, timeout=30) as admin:
        assert admin.post("/projects", json={"name": "other"}).status_code == 201
        assert admin.get("/projects/other/pipelines").json() == []
        assert admin.get("/projects/other/pipelines/mine").status_code == 404
        # its own spec cannot read demo's dataset either
        foreign = admin.post("/projects/other/pipelines", json={"spec": _spec("x"), "file": "x"})
        assert foreign.status_code == 422 and "'images', which does not exist" in foreign.text
    headers = {"Authorization": f"Bearer {srv.tokens['outsider']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as outsider:
        assert outsider.get("/api/v1/projects/demo/pipelines").status_code == 403
