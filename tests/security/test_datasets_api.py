"""Attacks on the dataset routes of a real server on 127.0.0.1: hostile names, paths and
references, bodies over the cap (declared or chunked), another project's datasets."""

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
