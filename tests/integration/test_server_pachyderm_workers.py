"""Pachyderm jobs off the server process, against a real server and ``conveyor worker``
on 127.0.0.1: the jobs of a project whose ``pachyderm_jobs`` setting is ``worker`` are
claimed by a worker process (never the server's own claimer), a long job of one project
holds no other project's job, and a branch moved through the API runs the pipelines
reading it as a commit does (the attacks: tests/security/test_pachyderm_triggers.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.server.pachyderm_jobs import pipelines_of
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, make_server, need_bwrap
from tests.integration.web_support import web_client

pytestmark = pytest.mark.integration
HANG = 'case "$(ls /pfs/in)" in hang) sleep 3600 ;; *) cp /pfs/in/* /pfs/out/ ;; esac'


def spec(name: str, repo_name: str, cmd: str, branch: str = "master") -> str:
    pfs = {"repo": repo_name, "glob": "/*", "name": "in", "branch": branch}
    body = {"pipeline": {"name": name}, "transform": {"cmd": ["sh"], "stdin": [cmd]}}
    return json.dumps({**body, "input": {"pfs": pfs}})


@pytest.fixture
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need_bwrap()
    server = make_server(tmp_path_factory.mktemp("pach-workers"), None)
    server.start(workers=0)
    yield server
    for proc in server.procs:  # a hung job: no clean stop
        proc.kill()
    server.stop()


def _admin(srv: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
    return httpx.Client(base_url=f"{srv.url}/api/v1", headers=headers, timeout=30)


def _until(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("the server never got there")


def _succeeded_over(client: httpx.Client, commit: str) -> list[dict[str, Any]]:
    """The jobs that succeeded over ``commit`` of their input."""
    jobs: list[dict[str, Any]] = client.get("/jobs").json()
    return [
        j
        for j in jobs
        if j["state"] == "success" and any(i["commit"] == commit for i in j["inputs"].values())
    ]


def _unattended(client: httpx.Client, count: int) -> dict[str, Any] | None:
    """The pending list once ``count`` triggers are told to wait for a worker."""
    pending: dict[str, Any] = client.get("/jobs/pending").json()
    return pending if pending["unattended"] == count else None


def _pending(srv: Server, project: str) -> list[dict[str, Any]]:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database

    db = open_database(ServerConfig(data=srv.data, database=srv.database).database_url)
    try:
        return db.pachyderm.pending(project)
    finally:
        db.close()


def _job_pid(srv: Server, project: str, pipeline: str) -> int:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.pachyderm_jobs import pipelines_of
    from conveyor.server.state import ServerState

    config = ServerConfig(data=srv.data)
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    try:
        return int(pipelines_of(state, project).jobs(pipeline)[0]["pid"])
    finally:
        state.db.close()


def test_workers_run_the_jobs_and_a_slow_one_holds_no_other_project(srv: Server) -> None:
    with _admin(srv) as admin:
        assert admin.post("/projects", json={"name": "beta"}).status_code == 201
        for project in ("demo", "beta"):
            put = admin.put(f"/projects/{project}/settings", json={"pachyderm_jobs": "worker"})
            assert put.status_code == 200, put.text
        beta = "/projects/beta"
        assert admin.post(f"{beta}/datasets", json={"name": "logs"}).status_code == 201
        made = admin.post(f"{beta}/pipelines", json={"spec": spec("copy", "logs", HANG)})
        assert made.status_code == 201, made.text
        with srv.api("lead") as lead:
            assert lead.post("/datasets", json={"name": "raw"}).status_code == 201
            made = lead.post("/pipelines", json={"spec": spec("slow", "raw", HANG)})
            assert made.status_code == 201, made.text
            assert lead.put("/datasets/raw/files/hang", content=b"x").is_success
            # no worker yet: the trigger waits in the database, the server leaves it
            waiting = _pending(srv, "demo")
            assert [(r["kind"], r["name"], r["status"]) for r in waiting] == [
                ("pipeline", "slow", "queued"),  # its creation
                ("commit", "raw", "queued"),
            ]
            assert lead.get("/jobs").json() == []
            worker = srv.start_worker()
            _until(lambda: [j["state"] for j in lead.get("/jobs").json()] == ["running"])
            assert _job_pid(srv, "demo", "slow") == worker.pid  # not the server's process
            # demo's job hangs; beta's commit runs beside it and ends
            assert admin.put(f"{beta}/datasets/logs/files/a.txt", content=b"alpha\n").is_success
            jobs = _until(
                lambda: [
                    j
                    for j in admin.get(f"{beta}/jobs").json()
                    if j["state"] in ("success", "failed")
                ]
            )
            assert jobs[0]["state"] == "success", jobs
            assert admin.get(f"{beta}/datasets/copy/files/a.txt").content == b"alpha\n"
            assert _job_pid(srv, "beta", "copy") == worker.pid
            assert [j["state"] for j in lead.get("/jobs").json()] == ["running"]


def test_triggers_waiting_for_no_worker_say_so_until_one_runs(
    srv: Server, repo: Repo, tmp_path: Path
) -> None:
    """A worker-mode project with no `conveyor worker`: once its triggers have waited a
    while, the pending list, the CLI and the datasets page say what they wait for; a
    worker started, the line goes and the jobs run."""
    from conveyor.server.pachyderm_notice import QUEUED_FOR, UNSEEN_FOR

    line = (
        "2 trigger(s) wait for a `conveyor worker`: none has asked for work in the last "
        f'{UNSEEN_FOR:.0f} s (this project\'s pachyderm_jobs is "worker")'
    )
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{srv.url}"\nproject = "demo"\n')
    member = {"CONVEYOR_TOKEN": srv.tokens["member"]}
    (tmp_path / "a.txt").write_text("alpha\n")
    with srv.api("lead") as lead:
        put = lead.put("/settings", json={"pachyderm_jobs": "worker"})
        assert put.status_code == 200, put.text
        assert lead.post("/datasets", json={"name": "raw"}).status_code == 201
        made = lead.post("/pipelines", json={"spec": spec("copy", "raw", HANG)})
        assert made.status_code == 201, made.text
        assert lead.put("/datasets/raw/files/a.txt", content=b"alpha\n").is_success
        pending = lead.get("/jobs/pending").json()
        assert [(t["kind"], t["name"]) for t in pending["triggers"]] == [
            ("pipeline", "copy"),
            ("commit", "raw"),
        ]
        assert pending["notice"] is None  # just queued: no one is told yet
        # the triggers wait QUEUED_FOR seconds with no worker ever seen: the line
        told = _until(lambda: _unattended(lead, 2))
        assert told["notice"] == line, told
        assert QUEUED_FOR < UNSEEN_FOR
        with web_client(srv, "viewer") as web:
            page = web.get("/ui/p/demo/datasets")
        assert page.status_code == 200, page.text
        assert "2 trigger(s) wait for a `conveyor worker`" in page.text, page.text[:2000]
        result = repo.run(
            "data", "put", "raw:/b.txt", str(tmp_path / "a.txt"), "--remote", env=member
        )
        assert result.code == 0, result.err
        assert "note: 2 trigger(s) wait for a `conveyor worker`" in result.err
        listing = repo.run("job", "list", "--remote", "--json", env=member)
        assert listing.code == 0 and json.loads(listing.out) == [], listing.err
        assert f"note: {line}" in listing.err
        srv.start_worker()
        _until(lambda: lead.get("/jobs/pending").json()["notice"] is None)
        jobs = _until(lambda: [j for j in lead.get("/jobs").json() if j["state"] == "success"])
        assert lead.get("/datasets/copy/files/a.txt").content == b"alpha\n", jobs
        _until(lambda: lead.get("/jobs/pending").json()["triggers"] == [])
        after = repo.run("job", "list", "--remote", env=member)
        assert after.code == 0 and "note:" not in after.err, after.err


def test_a_branch_moved_through_the_api_runs_its_pipelines(srv: Server) -> None:
    with srv.api("lead") as lead, srv.api("member") as member, srv.api("viewer") as viewer:
        assert lead.post("/datasets", json={"name": "words"}).status_code == 201
        first = member.put("/datasets/words/files/a.txt", content=b"alpha\n").json()["id"]
        head = member.put("/datasets/words/files/b.txt", content=b"beta\n").json()["id"]
        made = lead.post("/pipelines", json={"spec": spec("dev", "words", HANG, "dev")})
        assert made.status_code == 201, made.text
        assert viewer.get("/jobs").json() == []  # no dev branch yet: nothing to run over
        assert viewer.put("/datasets/words/branches/dev", json={"head": first}).status_code == 403
        moved = member.put("/datasets/words/branches/dev", json={"head": first})
        assert moved.status_code == 200, moved.text
        job = _until(lambda: [j for j in viewer.get("/jobs").json() if j["state"] == "success"])
        assert job[0]["inputs"], job
        listing = viewer.get("/datasets/dev/ls").json()
        assert [item["path"].lstrip("/") for item in listing] == ["a.txt"]
        # moved again, to master's head: the job over it adds b.txt (the job over the
        # first commit may have come from the pipeline's own trigger or from the move)
        assert member.put("/datasets/words/branches/dev", json={"head": "master"}).is_success
        _until(lambda: _succeeded_over(viewer, head))
        listing = viewer.get("/datasets/dev/ls").json()
        assert sorted(item["path"].lstrip("/") for item in listing) == ["a.txt", "b.txt"]


def test_a_commit_set_already_processed_gets_no_second_job(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A pipeline reads a branch made after it: its own trigger, run once the branch
    exists, makes the job over the branch's commit, and the branch's commit trigger then
    finds that commit processed and runs none (one job per input commit, as in
    Pachyderm). A later commit still gets its job, and a run asked for still runs one."""
    from conveyor.sdk.datasets.refs import parse_ref
    from conveyor.server.api_datasets import datasets_of

    need_bwrap()
    server = make_server(tmp_path_factory.mktemp("pach-once"), None)
    state = _state(server)
    try:
        pipelines = pipelines_of(state, "demo")
        pipelines.datasets.create("words", "")
        source = server.data / "a.txt"
        source.write_text("alpha\n")
        datasets = datasets_of(state, "demo", downstream=True)
        first = datasets.put(parse_ref("words:/a.txt"), [str(source)], "", False).id
        _run_owed(state)  # master's trigger: no pipeline reads it yet
        pipelines.create_text(spec("dev", "words", HANG, "dev"), "dev.json", True, False, False)
        state.pipeline_changed("demo", "dev")  # as the route does
        datasets.branch("words", "dev", parse_ref(f"words@{first}"))  # the commit trigger
        assert _run_owed(state) == [("pipeline", "dev"), ("commit", "words")]
        assert _inputs_of(pipelines.jobs("dev")) == [first]
        head = datasets.put(parse_ref("words@dev:/b.txt"), [str(source)], "", False).id
        assert _run_owed(state) == [("commit", "words")]
        assert _inputs_of(pipelines.jobs("dev")) == [head, first]
        state.pipeline_changed("demo", "dev")  # asked for: run again over the same head
        assert _run_owed(state) == [("pipeline", "dev")]
        assert _inputs_of(pipelines.jobs("dev")) == [head, head, first]
    finally:
        state.db.close()


def _state(server: Server) -> Any:
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.state import ServerState

    config = ServerConfig(data=server.data, database=server.database)
    return ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))


def _run_owed(state: Any) -> list[tuple[str, str]]:
    """Run the triggers owed, oldest first, as one claimer would; their (kind, name)."""
    from conveyor.server.pachyderm_jobs import run_trigger

    ran = []
    while (trigger := state.db.pachyderm.claim("test", ["demo"])) is not None:
        run_trigger(state, trigger)
        state.db.pachyderm.finish(trigger.id, "test")
        ran.append((trigger.kind, trigger.name))
    return ran


def _inputs_of(jobs: list[dict[str, Any]]) -> list[str]:
    """The input commit of each successful job, newest first."""
    return [j["inputs"]["in"]["commit"] for j in jobs if j["state"] == "success"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_crash_between_a_commit_and_its_jobs_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    """The server died right after a route's commit landed (the process killed before
    it woke its claimer): the trigger landed with the commit, and the server starting
    again runs the jobs that commit owes."""
    from contextlib import ExitStack

    from conveyor.sdk.datasets.refs import parse_ref
    from conveyor.server.api_datasets import datasets_of
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.pachyderm_jobs import pipelines_of
    from conveyor.server.state import ServerState

    need_bwrap()
    with ExitStack() as stack:
        database = None
        if backend == "postgresql":
            from tests.engines import fresh_postgres_database

            database = stack.enter_context(fresh_postgres_database("conveyor_pachsrv"))
        server = make_server(tmp_path_factory.mktemp(f"pach-held-{backend}"), database)
        config = ServerConfig(data=server.data, database=database)
        state = ServerState(
            config, open_database(config.database_url), Keyring.load(config.key_path)
        )
        try:
            pipelines = pipelines_of(state, "demo")
            pipelines.datasets.create("words", "")
            pipelines.create_text(spec("copy", "words", HANG), "copy.json", True, False, False)
            source = server.data / "a.txt"
            source.write_text("alpha\n")
            # what a put route does, up to the crash: the commit made with its trigger
            datasets = datasets_of(state, "demo", downstream=True)
            datasets.put(parse_ref("words:/a.txt"), [str(source)], "", False)
            assert [r["name"] for r in state.db.pachyderm.pending("demo")] == ["words"]
        finally:
            state.db.close()
        server.start(workers=0)
        try:
            with server.api("viewer") as viewer:
                jobs = _until(
                    lambda: [j for j in viewer.get("/jobs").json() if j["state"] == "success"]
                )
                assert viewer.get("/datasets/copy/files/a.txt").content == b"alpha\n", jobs
                _until(lambda: _pending(server, "demo") == [])  # done, nothing left owed
        finally:
            server.stop()
