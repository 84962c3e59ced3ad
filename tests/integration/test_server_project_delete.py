"""Deleting a project on a real server (SQLite and PostgreSQL), through the API and
``conveyor server delete-project``: only a server admin may; nothing is removed while
one of its runs is in progress; afterwards no run, record, dataset, secret, member, file
or git history of it is left, and a project created under the same name starts empty."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_support import CONVEYOR, Server, git, make_server

pytestmark = pytest.mark.integration
PIPELINE = """\
jobs:
  a:
    steps:
      - id: wait
        run: test -e go || sleep 60
      - id: out
        run: echo done > out.txt
        outputs: [out.txt]
"""
SECRET = "s3cret-value-of-the-old-project"


def _admin(server: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30)


def _push(server: Server, work: Path, go: bool) -> None:
    work.mkdir(exist_ok=True)
    if not (work / ".git").exists():
        git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    if go:
        (work / "go").write_text("")
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(work, "push", "-q", server.git_url("demo"), "main")


def _admin_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.run(
        [*CONVEYOR, *server.admin_args(), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        database = None
        if request.param == "postgresql":
            from tests.engines import fresh_postgres_database

            database = stack.enter_context(fresh_postgres_database("conveyor_projdel"))
        srv = make_server(tmp_path, database)
        srv.start(workers=1)
        try:
            yield srv
        finally:
            srv.stop()


def _runs(client: httpx.Client, count: int) -> list[dict[str, object]]:
    """The project's runs once there are ``count`` (a push queues its run)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs: list[dict[str, object]] = client.get("/runs").json()["runs"]
        if len(runs) >= count:
            return runs
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} runs after 60 s")


def _late_writes(server: Server) -> None:
    """What writes already under way when a project's rows went could still add under its
    name: a push's queued run (with records) and a dataset."""
    from conveyor.domain.states import RunStatus
    from conveyor.metadata.datasets import DatasetRecord
    from conveyor.metadata.records import RunRecord
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=server.data, database=server.database).database_url)
    try:
        late = db.queue.enqueue("demo", "refs/heads/main", "0" * 40, "push", "member")
        db.records.create_run(
            RunRecord(late, "p", RunStatus.QUEUED, None, False, time.time()), "demo"
        )
        db.records.create_dataset(DatasetRecord("demo/late", time.time()))
        assert late in _records(server)[0] and "demo/late" in _records(server)[1]
    finally:
        db.close()


def _records(server: Server) -> tuple[list[str], list[str]]:
    """Run ids with records, and dataset names, in the server's records (any project)."""
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=server.data, database=server.database).database_url)
    try:
        runs = [r.id for r in db.records.list_runs(limit=1000)]
        return runs, [d.name for d in db.records.list_datasets()]
    finally:
        db.close()


def test_a_deleted_project_leaves_nothing_and_its_name_starts_empty(
    server: Server, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    _push(server, work, go=False)  # the push's run waits in its first step
    with server.api("lead") as lead, _admin(server) as admin:
        assert lead.put("/secrets/TOKEN", json={"value": SECRET}).status_code == 204
        assert lead.post("/schedules", json={"cron": "0 3 * * *"}).status_code == 201
        assert lead.post("/datasets", json={"name": "raw"}).status_code == 201
        assert lead.put("/datasets/raw/files/a.txt", content=b"alpha\n").is_success
        runs = _runs(lead, 1)
        # the attacks: only a server admin deletes, whatever the role in the project
        for who in ("lead", "member", "viewer", "outsider"):
            headers = {"Authorization": f"Bearer {server.tokens[who]}"}
            answer = httpx.delete(f"{server.url}/api/v1/projects/demo", headers=headers)
            assert answer.status_code == 403, (who, answer.text)
        assert admin.delete("/projects/nope").status_code == 404
        for odd in ("..", "%2e%2e", "Demo", "a" * 300, "demo%2f..%2f.."):
            answer = admin.delete(f"/projects/{odd}")
            assert answer.status_code in (400, 404, 405), (odd, answer.text)
            assert "Traceback" not in answer.text
        # a run in progress: refused, and nothing removed
        busy = admin.delete("/projects/demo")
        assert busy.status_code == 409, busy.text
        assert "run(s) queued or running" in busy.json()["detail"]
        assert lead.get("/secrets").json() == ["TOKEN"]
        assert (server.data / "projects/demo/repo.git").is_dir()
        assert lead.post(f"/runs/{runs[0]['id']}/cancel").status_code in (200, 202)
        server.wait_run(runs[0]["id"])
        _push(server, work, go=True)  # a run that ends, with records and an output
        done = [r for r in _runs(lead, 2) if r["id"] != runs[0]["id"]]
        assert server.wait_run(done[0]["id"])["status"] == "succeeded"
        run_ids = {runs[0]["id"], done[0]["id"]}
        held, datasets = _records(server)
        assert run_ids <= set(held) and "demo/raw" in datasets

        deleted = admin.delete("/projects/demo")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"deleted": "demo", "runs": 2, "datasets": 1}
        assert "demo" not in [p["name"] for p in admin.get("/projects").json()]
        assert lead.get("/runs").status_code in (403, 404)
        held, datasets = _records(server)
        assert not run_ids & set(held) and not [d for d in datasets if d.startswith("demo/")]
        assert not (server.data / "projects/demo").exists()
        assert list((server.data / "trash").iterdir()) == []
        assert admin.delete("/projects/demo").status_code == 404
        _late_writes(server)  # a push and a put under way while it went

        # the same name again: an empty project, none of the old one's
        assert admin.post("/projects", json={"name": "demo"}).status_code == 201
        assert admin.get("/projects/demo/runs").json()["runs"] == []
        assert admin.get("/projects/demo/secrets").json() == []
        assert admin.get("/projects/demo/schedules").json() == []
        assert admin.get("/projects/demo/datasets").json() == []
        assert admin.get("/projects/demo/members").json() == []
        assert lead.get("/runs").status_code == 403  # the old lead is no member of it
    clone = git(tmp_path, "clone", "-q", server.git_url("demo", "admin"), "again", check=False)
    assert clone.returncode == 0, clone.stderr  # an empty repository: no old history
    assert not (tmp_path / "again/conveyor.yml").exists()
    assert git(tmp_path / "again", "rev-list", "--all").stdout == ""


def test_the_admin_command_asks_and_a_crash_leftover_is_not_inherited(server: Server) -> None:
    """``delete-project`` without a terminal needs --yes (exit 2, nothing removed); with
    it, --json tells what went. A directory left by a deletion that crashed after its
    rows went is moved aside when a project of that name is created again."""
    refused = _admin_cli(server, "delete-project", "demo")
    assert refused.returncode == 2, refused.stderr
    assert "pass --yes" in refused.stderr and "Traceback" not in refused.stderr
    assert (server.data / "projects/demo/repo.git").is_dir()
    done = _admin_cli(server, "delete-project", "demo", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "demo"
    again = _admin_cli(server, "delete-project", "demo", "--yes")
    assert again.returncode == 2 and "no project 'demo'" in again.stderr, again.stderr
    bad = _admin_cli(server, "delete-project", "../etc", "--yes")
    assert bad.returncode == 2 and "not a valid project name" in bad.stderr, bad.stderr

    # a deletion killed after its transaction: the directory is there, the rows are not
    leftover = server.data / "projects/ghost"
    (leftover / "repo.git").mkdir(parents=True)
    (leftover / "old-secret.txt").write_text(SECRET)
    made = _admin_cli(server, "add-project", "ghost")
    assert made.returncode == 0, made.stderr
    assert not (leftover / "old-secret.txt").exists()
    assert (leftover / "repo.git" / "HEAD").is_file()  # a fresh bare repository
    deadline = time.monotonic() + 5
    while list((server.data / "trash").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list((server.data / "trash").iterdir()) == []


def test_a_running_pachyderm_trigger_or_a_deployment_keeps_the_project(tmp_path: Path) -> None:
    """Each of them holds work or processes: the deletion is refused (nothing removed)
    until it ends, then goes through."""
    from conveyor.server.config import ServerConfig
    from conveyor.server.db import tables as t
    from conveyor.server.db.accounts import ProjectBusy
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.project_deletion import delete_project
    from conveyor.server.state import ServerState

    server = make_server(tmp_path, None)
    config = ServerConfig(data=server.data)
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    try:
        state.pipeline_changed("demo", "copy")
        trigger = state.db.pachyderm.claim("a-worker", ["demo"])
        assert trigger is not None
        with pytest.raises(ProjectBusy, match="1 Pachyderm trigger"):
            delete_project(state, "demo")
        state.db.pachyderm.finish(trigger.id, "a-worker")
        now = time.time()
        with state.db.engine.begin() as conn:
            conn.execute(
                t.deployments.insert().values(
                    project="demo", name="svc", kind="endpoint", mode="low_latency",
                    ref="main", follow=False, commit="0" * 40, settings={}, enabled=True,
                    created_by="lead", created_at=now, updated_at=now,
                )
            )  # fmt: skip
        with pytest.raises(ProjectBusy, match="1 deployment"):
            delete_project(state, "demo")
        assert state.db.accounts.project("demo") is not None
        assert (server.data / "projects/demo/repo.git").is_dir()
        with state.db.engine.begin() as conn:
            conn.execute(t.deployments.delete())
        assert delete_project(state, "demo").name == "demo"
        assert state.db.accounts.project("demo") is None
    finally:
        state.db.close()
