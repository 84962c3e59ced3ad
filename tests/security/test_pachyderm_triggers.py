"""Attacks on what feeds the Pachyderm trigger queue, against a real server on 127.0.0.1:
hostile dataset and branch names, a viewer moving a branch, a refused commit, and the
``pachyderm_jobs`` setting; none of them leaves a trigger in the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.server_support import Server, make_server

pytestmark = pytest.mark.integration
HOSTILE = ["..%2f..%2fetc", "a%20b", "x" * 64, "-rf", "%24(touch%20MARK)", "a%0Ab"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("pach-triggers"), None)
    server.start(workers=0, extra=("--max-dataset-body", "1000"))
    with server.api("lead") as lead:  # no worker runs: a trigger written would stay
        assert lead.put("/settings", json={"pachyderm_jobs": "worker"}).status_code == 200
        assert lead.post("/datasets", json={"name": "words"}).status_code == 201
    yield server
    server.stop()


def _pending(srv: Server) -> list[dict[str, Any]]:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=srv.data).database_url)
    try:
        return db.pachyderm.pending()
    finally:
        db.close()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_branch_and_dataset_names_write_no_trigger(srv: Server, name: str) -> None:
    with srv.api("member") as member:
        for response in (
            member.put(f"/datasets/words/branches/{name}", json={"head": None}),
            member.put(f"/datasets/{name}/branches/dev", json={"head": None}),
            member.put(f"/datasets/words/files/a.txt?branch={name}", content=b"x"),
            member.put(f"/datasets/{name}/files/a.txt", content=b"x"),
        ):
            assert response.status_code in (400, 404, 405, 422), response.text
            assert "Traceback" not in response.text
    assert _pending(srv) == []


def test_refused_moves_and_commits_write_no_trigger(srv: Server) -> None:
    with srv.api("viewer") as viewer, srv.api("member") as member:
        assert viewer.put("/datasets/words/branches/dev", json={"head": None}).status_code == 403
        assert viewer.put("/datasets/words/files/a.txt", content=b"x").status_code == 403
        unknown = member.put("/datasets/words/branches/dev", json={"head": "0" * 32})
        assert unknown.status_code == 404, unknown.text  # no such commit: nothing moved
        too_big = member.put("/datasets/words/files/a.txt", content=b"x" * 5000)
        assert too_big.status_code == 413
    assert _pending(srv) == []
    with srv.api("member") as member:  # a commit that lands owes its trigger
        assert member.put("/datasets/words/files/a.txt", content=b"x").is_success
    assert [(r["kind"], r["name"], r["status"]) for r in _pending(srv)] == [
        ("commit", "words", "queued")
    ]


@pytest.mark.parametrize("value", ["root", "worker; rm -rf /", "", 1, None])
def test_the_jobs_setting_takes_only_its_two_values(srv: Server, value: object) -> None:
    with srv.api("member") as member, srv.api("lead") as lead:
        assert member.put("/settings", json={"pachyderm_jobs": "server"}).status_code == 403
        response = lead.put("/settings", json={"pachyderm_jobs": value})
        if value is None:  # not given: the setting stays as it was
            assert response.json()["settings"]["pachyderm_jobs"] == "worker"
        else:
            assert response.status_code == 422, response.text


def test_the_pending_list_is_the_projects_own(srv: Server) -> None:
    """``GET .../jobs/pending`` (what waits for a worker) answers a project's own roles
    only, and names no worker (host names and pids stay on the server)."""
    import httpx

    with srv.api("member") as member:
        assert member.put("/datasets/words/files/p.txt", content=b"x").is_success
    headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
    with httpx.Client(base_url=f"{srv.url}/api/v1", headers=headers, timeout=30) as admin:
        assert admin.post("/projects", json={"name": "other"}).status_code == 201
    base = f"{srv.url}/api/v1/projects"
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.get(f"{base}/demo/jobs/pending").status_code == 401
    with srv.api("lead") as lead:
        foreign = lead.get(f"{base}/other/jobs/pending")
        assert foreign.status_code in (403, 404), foreign.text
    with srv.api("viewer") as viewer:
        pending = viewer.get("/jobs/pending")
    assert pending.status_code == 200, pending.text
    body = pending.json()
    assert body["triggers"] and all(
        set(t) == {"kind", "name", "branch", "status", "created_at"} for t in body["triggers"]
    )
