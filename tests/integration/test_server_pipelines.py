"""Pachyderm pipelines over the server's REST API and ``--remote``, against a real
server on 127.0.0.1: leads create, update and delete; viewers read pipelines, jobs and
datums; a wrong spec is a 422 naming file:line:col (the attacks on these routes:
tests/security/test_pipelines_api.py)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import ROLES, Server, make_server, need_bwrap

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


def _wait_jobs(client: httpx.Client, pipeline: str, count: int, final: bool = True) -> Any:
    """The pipeline's jobs once ``count`` of them exist (and, with ``final``, ended)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = client.get("/jobs", params={"pipeline": pipeline}).json()
        if len(jobs) >= count and (not final or jobs[0]["state"] in ("success", "failed")):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"{pipeline}: {count} job(s) not there: {jobs}")


def test_a_put_runs_the_downstream_pipelines_in_turn(srv: Server, repo: Repo) -> None:
    need_bwrap()
    upper = "tr a-z A-Z < /pfs/in/$(ls /pfs/in) > /pfs/out/$(ls /pfs/in)"
    with srv.api("lead") as lead, srv.api("member") as member, srv.api("viewer") as viewer:
        assert lead.post("/datasets", json={"name": "words"}).status_code == 201
        chain = spec("stage1", "words") + "\n" + spec("stage2", "stage1", upper)
        assert lead.post("/pipelines", json={"spec": chain, "file": "c.json"}).is_success
        assert member.put("/datasets/words/files/a.txt", content=b"alpha\n").is_success
        first = _wait_jobs(viewer, "stage2", 1)
        assert first[0]["state"] == "success", first
        assert viewer.get("/datasets/stage2/files/a.txt").content == b"ALPHA\n"
        # a directory put (a tar stream) triggers too; only the new datum runs
        assert member.put("/datasets/words/tree", content=_tar({"b.txt": b"beta\n"})).is_success
        jobs = _wait_jobs(viewer, "stage2", 2)
        assert jobs[0]["state"] == "success" and jobs[0]["datum_counts"] == {
            "success": 1,
            "skipped": 1,
        }
        assert viewer.get("/datasets/stage2/files/b.txt").content == b"BETA\n"
        datums = viewer.get(f"/jobs/{jobs[0]['id'][:8]}/datums").json()
        assert sorted(d["files"][0] for d in datums) == ["/pfs/in/a.txt", "/pfs/in/b.txt"]
        provenance = viewer.get("/datasets/stage2").json()["commit"]["provenance"]
        assert provenance["job"] == jobs[0]["id"] and provenance["pipeline"] == "stage2"
        # a pipeline over data that exists runs at once; the datum sees only /pfs
        lead.post("/pipelines", json={"spec": spec("peek", "words", PEEK), "file": "p.json"})
        assert _wait_jobs(viewer, "peek", 1)[0]["state"] == "success"
        assert member.delete("/datasets/words/files/b.txt").is_success  # a delete triggers
        peeked = _wait_jobs(viewer, "peek", 2)
        assert peeked[0]["state"] == "success", peeked
        assert viewer.get("/datasets/peek/files/a.txt").content == b"hidden\n"
        # a failed datum: the job names no path of the server; its log is one route away
        failing = json.loads(spec("fails", "words", "echo boom >&2; exit 3"))
        failing["datum_tries"] = 1
        assert lead.post("/pipelines", json={"spec": json.dumps(failing)}).is_success
        failed = _wait_jobs(viewer, "fails", 1)[0]
        assert failed["state"] == "failed" and "server-data" not in failed["error"]
        (row,) = viewer.get(f"/jobs/{failed['id']}/datums").json()
        assert row["state"] == "failed" and row["log"].startswith("/api/v1/projects/demo/")
        assert "boom" in viewer.get(row["log"].removeprefix("/api/v1/projects/demo")).text
        assert viewer.get(f"/jobs/{failed['id']}/datums/{'0' * 64}/log").status_code == 404
        assert viewer.get("/datasets/fails").json()["commit"] is None
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{srv.url}"\nproject = "demo"\n')
    repo.pipeline("jobs:\n  j:\n    steps:\n      - run: 'true'\n")
    repo.commit()
    env = {"CONVEYOR_TOKEN": srv.tokens["viewer"]}
    waited = repo.run("job", "wait", jobs[0]["id"][:8], "--remote", "--json", env=env)
    assert waited.code == 0, waited.err
    assert json.loads(waited.out)["output_commit"] == jobs[0]["output_commit"]
    listed = repo.run("datum", "list", jobs[0]["id"][:8], "--remote", env=env)
    assert listed.code == 0 and "/b.txt" in listed.out
    # a job asked for by a member: nothing new, every datum reused
    refused = repo.run("pipeline", "run", "stage2", "--remote", env=env)
    assert refused.code == 2 and "403" in refused.err  # viewers do not run
    env = {"CONVEYOR_TOKEN": srv.tokens["member"]}
    queued = repo.run("pipeline", "run", "stage2", "--remote", "--json", env=env)
    assert queued.code == 0 and json.loads(queued.out)["queued"], queued.err
    with srv.api("viewer") as viewer:
        again = _wait_jobs(viewer, "stage2", 3)
        assert again[0]["state"] == "success" and set(again[0]["datum_counts"]) == {"skipped"}


PEEK = (
    "test -e /pfs/in/$(ls /pfs/in) && ! ls / | grep -q server-data "
    f"&& ! test -e {Path.home()} && echo hidden > /pfs/out/$(ls /pfs/in)"
)


def test_a_server_killed_midway_commits_nothing_and_resumes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    need_bwrap()
    server = make_server(tmp_path_factory.mktemp("pach-crash"), None)
    server.start(workers=0)
    hang = 'case "$(ls /pfs/in)" in hang) sleep 3600 ;; *) cp /pfs/in/* /pfs/out/ ;; esac'
    try:
        with server.api("lead") as lead:
            lead.post("/datasets", json={"name": "raw"})
            lead.post("/pipelines", json={"spec": spec("slow", "raw", hang), "file": "s.json"})
            both = _tar({"done": b"done", "hang": b"hang"})  # one commit: one job
            assert lead.put("/datasets/raw/tree", content=both).is_success
            _until(lambda: _states(lead) == ["running", "success"])
        _kill(server)  # SIGKILL, mid-job
        server.start(workers=0)
        with server.api("viewer") as viewer:
            assert viewer.get("/datasets/slow").json()["commit"] is None  # nothing half-made
            _until(lambda: len(viewer.get("/jobs").json()) == 2)
            jobs = viewer.get("/jobs").json()
            assert jobs[1]["state"] == "interrupted"
            resumed = viewer.get(f"/jobs/{jobs[0]['id']}/datums").json()
            by_file = {d["files"][0]: d["state"] for d in resumed}
            assert by_file["/pfs/in/done"] == "skipped"  # the finished datum is reused
    finally:
        _kill(server)  # its job hangs: no clean stop


def _kill(server: Server) -> None:
    for proc in server.procs:
        proc.kill()
        proc.wait()
        if proc.stderr:
            server.logs += proc.stderr.read()
            proc.stderr.close()
    server.procs.clear()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _states(client: httpx.Client) -> list[str]:
    """The job's state and its datums that succeeded."""
    found = client.get("/jobs").json()
    if not found:
        return []
    rows = client.get(f"/jobs/{found[0]['id']}/datums").json()
    return sorted([found[0]["state"], *(r["state"] for r in rows if r["state"] == "success")])


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("the server never got there")


def test_a_cron_input_ticks_on_the_servers_clock(srv: Server) -> None:
    need_bwrap()
    clock = {
        "pipeline": {"name": "clock"},
        "transform": {"cmd": ["sh"], "stdin": ["ls /pfs/tick > /pfs/out/seen"]},
        "input": {"cron": {"name": "tick", "spec": "@every 1s", "overwrite": True}},
    }
    with srv.api("lead") as lead, srv.api("viewer") as viewer:
        made = lead.post("/pipelines", json={"spec": json.dumps(clock), "file": "clock.json"})
        assert made.status_code == 201, made.text
        assert viewer.get("/datasets/clock_tick").status_code == 200  # made with the pipeline
        jobs = _wait_jobs(viewer, "clock", 2)  # two ticks, two jobs
        assert {j["state"] for j in jobs[:2]} == {"success"}, jobs
        ticks = viewer.get("/datasets/clock_tick/ls").json()
        assert len(ticks) == 1  # overwrite: only the last tick's file
        seen = viewer.get("/datasets/clock/files/seen").content.decode().split()
        assert len(seen) == 1 and seen[0].endswith("Z") and seen[0][:2] == "20"
        assert lead.delete("/pipelines/clock").is_success  # and it stops ticking


def test_a_job_left_running_under_the_servers_own_pid_is_resumed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A server killed as pid 1 of a container starts again as pid 1: its job, recorded
    as running by that pid, is still interrupted (in-process: the resume of a start)."""
    import os

    from conveyor.server.api_pipelines import pipelines_of
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.pachyderm_jobs import resume, run_trigger
    from conveyor.server.state import ServerState

    need_bwrap()
    server = make_server(tmp_path_factory.mktemp("pach-pid"), None)
    config = ServerConfig(data=server.data)
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    try:
        pipelines = pipelines_of(state, "demo")
        pipelines.datasets.create("images", "")
        pipelines.create_text(spec("copy"), "copy.json", True, False, False)
        source = server.data / "a.txt"
        source.write_text("alpha\n")
        from conveyor.sdk.datasets.refs import parse_ref

        pipelines.datasets.put(parse_ref("images:/a.txt"), [str(source)], "", False)
        old = {
            "id": "0" * 32,
            "pipeline": "copy",
            "spec_version": 1,
            "state": "running",
            "started_at": 1.0,
            "finished_at": None,
            "pid": os.getpid(),
            "output_commit": None,
            "datums": [],
        }
        pipelines.state.save_job(old)
        assert resume(state) == 1
        owed = state.db.pachyderm.claim("test", ["demo"])  # what the server's claimer does
        assert owed is not None and (owed.kind, owed.name) == ("pipeline", "copy")
        run_trigger(state, owed)
        jobs = pipelines.jobs("copy")
        assert [j["state"] for j in jobs] == ["success", "interrupted"]
        assert pipelines.datasets.branches("copy")["master"] == jobs[0]["output_commit"]
    finally:
        state.db.close()
