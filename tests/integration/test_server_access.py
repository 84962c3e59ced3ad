"""Every route refuses the callers it must: 401 without a (valid) token, 403 below the
route's role, against a real server on 127.0.0.1. The matrix is checked against the
app's own route list, so a new route without an entry here fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server_support import ROLES, Server, git, make_server

pytestmark = pytest.mark.integration

P = "/api/v1/projects/demo"
RUN = "0123456789ab"
# a periodic deployment: a member's call is refused at once (409), never waits for a worker
PERIODIC = {"name": "svc", "kind": "periodic", "settings": {"schedule": "0 3 * * *"}}
# a Pachyderm spec reading a dataset that does not exist: refused (422) once allowed
PACH = '{"pipeline": {"name": "copy"}, "transform": {"cmd": ["true"]}, "input": {"pfs": {"repo": "x", "glob": "/*"}}}'
# (method, path, body, lowest role allowed); "user": any valid token, "admin": admins only
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/v1/projects", None, "user"),
    ("POST", "/api/v1/projects", {"name": "other"}, "admin"),
    ("DELETE", P, None, "admin"),  # a run stays queued (no worker): the admin's gets 409
    ("GET", "/api/v1/server", None, "admin"),
    ("GET", P, None, "viewer"),
    ("GET", f"{P}/pipeline?ref=main", None, "viewer"),
    ("GET", f"{P}/commits/main", None, "viewer"),
    ("PUT", f"{P}/settings", {"parallelism": 2}, "lead"),
    ("GET", f"{P}/members", None, "viewer"),
    ("PUT", f"{P}/members/extra", {"role": "viewer"}, "lead"),
    ("DELETE", f"{P}/members/extra", None, "lead"),
    ("GET", f"{P}/secrets", None, "lead"),
    ("PUT", f"{P}/secrets/TOKEN", {"value": "s3cret-value"}, "lead"),
    ("DELETE", f"{P}/secrets/TOKEN", None, "lead"),
    ("GET", f"{P}/schedules", None, "viewer"),
    ("POST", f"{P}/schedules", {"cron": "0 3 * * *"}, "lead"),
    ("DELETE", f"{P}/schedules/999", None, "lead"),
    ("GET", f"{P}/runs", None, "viewer"),
    ("POST", f"{P}/runs", {"ref": "main"}, "member"),
    ("GET", f"{P}/runs/{RUN}", None, "viewer"),
    ("POST", f"{P}/runs/{RUN}/cancel", None, "member"),
    ("POST", f"{P}/runs/{RUN}/resume", None, "member"),
    ("GET", f"{P}/runs/{RUN}/steps", None, "viewer"),
    ("GET", f"{P}/runs/{RUN}/logs/a.step-1", None, "viewer"),
    ("GET", f"{P}/runs/{RUN}/artifacts", None, "viewer"),
    ("GET", f"{P}/runs/{RUN}/artifacts/out/x.txt", None, "viewer"),
    ("GET", f"{P}/runs/{RUN}/metrics", None, "viewer"),
    ("GET", f"{P}/runs/{RUN}/params", None, "viewer"),
    ("GET", f"{P}/lineage?path=out/x.txt", None, "viewer"),
    ("GET", f"{P}/datasets", None, "viewer"),
    ("POST", f"{P}/datasets", {"name": "images"}, "lead"),
    ("DELETE", f"{P}/datasets/images", None, "lead"),
    ("GET", f"{P}/datasets/images", None, "viewer"),
    ("GET", f"{P}/datasets/images/log", None, "viewer"),
    ("GET", f"{P}/datasets/images/ls", None, "viewer"),
    ("GET", f"{P}/datasets/images/glob?pattern=/*", None, "viewer"),
    ("GET", f"{P}/datasets/images/diff?from=master&to=master", None, "viewer"),
    ("GET", f"{P}/datasets/images/files/out/x.txt", None, "viewer"),
    ("PUT", f"{P}/datasets/images/files/out/x.txt", {"some": "content"}, "member"),
    ("DELETE", f"{P}/datasets/images/files/out/x.txt", None, "member"),
    ("PUT", f"{P}/datasets/images/tree", {"not": "a tar"}, "member"),
    ("GET", f"{P}/datasets/images/branches", None, "viewer"),
    ("PUT", f"{P}/datasets/images/branches/dev", {"head": None}, "member"),
    ("DELETE", f"{P}/datasets/images/branches/dev", None, "lead"),
    ("GET", f"{P}/pipelines", None, "viewer"),
    ("POST", f"{P}/pipelines", {"spec": PACH, "file": "p.json"}, "lead"),
    ("PUT", f"{P}/pipelines", {"spec": PACH, "file": "p.json"}, "lead"),
    ("GET", f"{P}/pipelines/copy", None, "viewer"),
    ("POST", f"{P}/pipelines/copy/run", None, "member"),
    ("DELETE", f"{P}/pipelines/copy", None, "lead"),
    ("GET", f"{P}/jobs", None, "viewer"),
    ("GET", f"{P}/jobs/pending", None, "viewer"),
    ("GET", f"{P}/jobs/{RUN}", None, "viewer"),
    ("GET", f"{P}/jobs/{RUN}/datums", None, "viewer"),
    ("GET", f"{P}/jobs/{RUN}/datums/{RUN}/log", None, "viewer"),
    ("GET", f"{P}/ci", None, "viewer"),
    ("GET", f"{P}/ci/{RUN}/logs/build", None, "viewer"),
    ("GET", f"{P}/deployments", None, "viewer"),
    ("POST", f"{P}/deployments", PERIODIC, "lead"),
    ("GET", f"{P}/deployments/svc", None, "viewer"),
    ("PATCH", f"{P}/deployments/svc", {"pin": True}, "lead"),
    ("POST", f"{P}/deployments/svc/disable", None, "lead"),
    ("POST", f"{P}/deployments/svc/enable", None, "lead"),
    ("POST", f"{P}/deployments/svc/token", None, "lead"),
    ("GET", f"{P}/deployments/svc/executions", None, "viewer"),
    ("GET", f"{P}/deployments/svc/executions/0000", None, "viewer"),
    ("GET", f"{P}/deployments/svc/executions/0000/outputs/model", None, "viewer"),
    ("POST", f"{P}/deployments/svc/call", {}, "member"),
    ("DELETE", f"{P}/deployments/svc", None, "lead"),
]
CALLERS = ("anonymous", "bad-token", "outsider", *ROLES, "admin")


def allowed(caller: str, needed: str) -> bool:
    if caller in ("anonymous", "bad-token"):
        return False
    if needed == "user" or caller == "admin":
        return True
    if needed == "admin" or caller == "outsider":
        return False
    return ROLES.index(caller) >= ROLES.index(needed)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Server]]:
    """A server without workers on SQLite, with one finished run, one queued for good
    (the project cannot be deleted) and a user ``extra``."""
    from conveyor.server.db.database import open_database

    tmp = tmp_path_factory.mktemp("access")
    server = make_server(tmp, None)
    db = open_database(f"sqlite:///{server.data / 'server.db'}")
    server.tokens["extra"] = db.accounts.add_user("extra")[1]
    work = _commit(tmp / "work")
    git(work, "push", "-q", str(server.data / "projects/demo/repo.git"), "main")
    commit = git(work, "rev-parse", "HEAD").stdout.strip()
    db.queue.enqueue("demo", "refs/heads/main", commit, "push", "member", status="failed")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE srv_runs SET id = '{RUN}'")
    db.queue.enqueue("demo", "refs/heads/main", commit, "push", "member")  # never runs
    db.close()
    server.start(workers=0)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, server
    server.stop()


def _commit(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "conveyor.yml").write_text("jobs:\n  a:\n    steps:\n      - run: echo hi\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    return path


def _headers(caller: str, tokens: dict[str, str]) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "bad-token":
        return {"Authorization": "Bearer cvy_not-a-token"}
    return {"Authorization": f"Bearer {tokens[caller]}"}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
def test_every_route_refuses_whom_it_must(
    api: tuple[httpx.Client, Server],
    method: str,
    path: str,
    body: Any,
    needed: str,
    caller: str,
) -> None:
    client, server = api
    tokens = server.tokens
    response = client.request(method, path, json=body, headers=_headers(caller, tokens))
    if caller in ("anonymous", "bad-token"):
        assert response.status_code == 401, response.text
        assert "WWW-Authenticate" in response.headers
    elif not allowed(caller, needed):
        assert response.status_code == 403, response.text
    else:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
        if (method, path) == ("DELETE", P):  # its queued run keeps the project
            assert response.status_code == 409, response.text
    assert "Traceback" not in response.text


def test_the_matrix_covers_every_api_route(api: tuple[httpx.Client, Server]) -> None:
    client, _ = api
    declared = {(m, p.split("?")[0]) for m, p, _, _ in ROUTES}
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/") or path == "/api/v1/health":
            continue
        concrete = (
            path.replace("{project}", "demo")
            .replace("{run_id}", RUN)
            .replace("{user_name}", "extra")
            .replace("{name}", "TOKEN")
            .replace("{schedule_id}", "999")
            .replace("{step_id}", "a.step-1")
            .replace("{path}", "out/x.txt")
            .replace("{ref}", "main")
            .replace("{dataset}", "images")
            .replace("{branch}", "dev")
            .replace("{deployment}", "svc")
            .replace("{execution_id}", "0000")
            .replace("{output}", "model")
            .replace("{pipeline}", "copy")
            .replace("{job_id}", RUN)
            .replace("{datum_id}", RUN)
            .replace("{ci_id}", RUN)
            .replace("{step}", "build")
        )
        for method in operations:
            assert (method.upper(), concrete) in declared, f"{method} {path} is not in the matrix"


def test_members_cancel_only_their_own_runs(api: tuple[httpx.Client, Server]) -> None:
    client, server = api
    tokens = server.tokens
    client.put(f"{P}/members/extra", json={"role": "member"}, headers=_headers("admin", tokens))
    response = client.post(f"{P}/runs/{RUN}/cancel", headers=_headers("extra", tokens))
    assert response.status_code == 403
    assert "their own runs" in response.json()["detail"]


def test_artifact_paths_cannot_leave_the_project(api: tuple[httpx.Client, Server]) -> None:
    client, server = api
    tokens = server.tokens
    for bad in ("../../etc/passwd", "out/../../x", "%2e%2e/%2e%2e/etc/passwd"):
        response = client.get(f"{P}/runs/{RUN}/artifacts/{bad}", headers=_headers("viewer", tokens))
        assert response.status_code in (400, 404), (bad, response.status_code)
        assert "root:" not in response.text


def test_settings_name_known_executors_only(api: tuple[httpx.Client, Server]) -> None:
    client, server = api
    headers = _headers("lead", server.tokens)
    bad = client.put(f"{P}/settings", json={"executor": "slurmish"}, headers=headers)
    assert bad.status_code == 400 and "there is no executor 'slurmish'" in bad.json()["detail"]
    good = client.put(f"{P}/settings", json={"executor": "local"}, headers=headers)
    assert good.status_code == 200 and good.json()["settings"]["executor"] == "local"


def test_settings_refuse_a_bad_executor_table_before_storing_it(
    api: tuple[httpx.Client, Server],
) -> None:
    """A table a run would refuse is refused when the lead sets it (one sentence, 422),
    and what was stored before stays."""
    client, server = api
    headers = _headers("lead", server.tokens)
    good = {"executors": {"dask": {"scheduler": "tcp://127.0.0.1:1", "parallelism": 2}}}
    assert client.put(f"{P}/settings", json=good, headers=headers).status_code == 200
    for table, says in (
        ({"dask": {"schedular": "tcp://h:1"}}, "unknown setting executors.dask.schedular"),
        ({"spark": {"master": ["local"]}}, "executors.spark.master is a list"),
        ({"htcondor": {"poll_interval": "x" * 3000}}, "longer than 2000 characters"),
    ):
        bad = client.put(f"{P}/settings", json={"executors": table}, headers=headers)
        assert bad.status_code == 422 and says in bad.json()["detail"], bad.text
    shown = client.get(P, headers=headers).json()["settings"]
    assert shown["executors"] == good["executors"]
    client.put(f"{P}/settings", json={"executors": {}}, headers=headers)


def test_the_pipeline_at_a_ref(api: tuple[httpx.Client, Server]) -> None:
    client, server = api
    headers = _headers("viewer", server.tokens)
    pipeline = client.get(f"{P}/pipeline", headers=headers).json()
    assert pipeline["on"]["push"]["branches"] == ["**"]
    assert [s["id"] for s in pipeline["plan"]["steps"]] == ["a.step-1"]
    missing = client.get(f"{P}/pipeline?ref=nope", headers=headers)
    assert missing.status_code == 404


def test_openapi_documents_the_api(api: tuple[httpx.Client, Server]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Conveyor server"
    assert f"{P.replace('demo', '{project}')}/runs/{{run_id}}/cancel" in spec["paths"]
    assert not any(p.startswith("/git/") for p in spec["paths"])


def test_a_malformed_body_gets_one_sentence(api: tuple[httpx.Client, Server]) -> None:
    client, server = api
    headers = _headers("member", server.tokens)
    answer = client.post(f"{P}/runs", json={"ref": ["main"]}, headers=headers)
    assert answer.status_code == 422
    assert answer.json() == {"detail": "body.ref: Input should be a valid string"}
    answer = client.post(f"{P}/runs", content=b"{not json", headers=headers)
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], str)
