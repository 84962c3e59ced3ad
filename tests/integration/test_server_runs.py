"""Runs on a real server: secrets, streamed logs, cancel, resume, schedules, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(extra=("--max-push-body", str(2 * 1024 * 1024)))
    yield srv
    srv.stop()


def push(repo: Repo, server: Server, pipeline: str) -> str:
    repo.pipeline(pipeline)
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    ids = run_ids(out)
    assert len(ids) == 1, out
    return ids[0]


def test_secrets_reach_steps_masked_and_never_leave(repo: Repo, server: Server) -> None:
    with server.api("lead") as lead:
        assert lead.put("/secrets/API_TOKEN", json={"value": "hunter2-xyz"}).status_code == 204
        assert lead.get("/secrets").json() == ["API_TOKEN"]
        bad = lead.put("/secrets/CONVEYOR_X", json={"value": "v"})
        assert bad.status_code == 400 and "not a valid secret name" in bad.json()["detail"]
    run_id = push(
        repo,
        server,
        'jobs:\n  a:\n    steps:\n      - run: echo "token=$API_TOKEN" && '
        'test "$API_TOKEN" = hunter2-xyz\n',
    )
    assert server.wait_run(run_id)["status"] == "succeeded"
    with server.api("viewer") as viewer:
        log = viewer.get(f"/runs/{run_id}/logs/a.step-1").text
    assert log == "token=***\n"
    stored = list((server.data / "projects/demo/runs" / run_id).rglob("*.log"))
    assert stored and all("hunter2" not in p.read_text() for p in stored)
    assert b"hunter2" not in (server.data / "server.db").read_bytes()


def test_logs_stream_while_the_step_runs_and_cancel_stops_it(repo: Repo, server: Server) -> None:
    run_id = push(
        repo, server, "jobs:\n  a:\n    steps:\n      - run: echo first && sleep 30 && echo last\n"
    )
    server.wait_run(run_id, until=("running",))
    started = time.monotonic()
    with (
        server.api("viewer") as viewer,
        viewer.stream("GET", f"/runs/{run_id}/logs/a.step-1") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "first"
        assert time.monotonic() - started < 10, "the first line must come while the step runs"
        with server.api("member") as member:
            answer = member.post(f"/runs/{run_id}/cancel").json()
        assert answer["cancel_requested"] is True
        assert list(lines) == []  # the stream ends with the step
    run = server.wait_run(run_id)
    assert run["status"] == "cancelled"
    assert run["steps"][0]["status"] == "cancelled"
    with server.api("member") as member:
        again = member.post(f"/runs/{run_id}/resume")
    assert again.status_code == 201
    assert again.json()["trigger"] == f"resume:{run_id}"


def test_a_failed_step_is_named_in_the_run(repo: Repo, server: Server) -> None:
    run_id = push(repo, server, "jobs:\n  a:\n    steps:\n      - run: exit 3\n")
    run = server.wait_run(run_id)
    assert run["status"] == "failed"
    assert run["error"] == "step a.step-1 failed: exit code 3"


def test_manual_runs_and_schedules_queue_runs(repo: Repo, server: Server) -> None:
    first = push(repo, server, "jobs:\n  a:\n    steps:\n      - run: echo $GREETING\n")
    server.wait_run(first)
    with server.api("member") as member:
        created = member.post("/runs", json={"ref": "main"})
        assert created.status_code == 201, created.text
        assert created.json()["trigger"] == "manual"
        missing = member.post("/runs", json={"ref": "no-such-branch"})
        assert missing.status_code == 400 and "names no branch" in missing.json()["detail"]
    assert server.wait_run(created.json()["id"])["status"] == "succeeded"
    with server.api("lead") as lead:
        bad = lead.post("/schedules", json={"cron": "every day"})
        assert bad.status_code == 400 and "not a cron expression" in bad.json()["detail"]
        assert lead.post("/schedules", json={"cron": "0 3 * * *"}).status_code == 201
    # make the schedule due now: the server's clock queues a run within a second or two
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{server.data / 'server.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE srv_schedules SET next_at = 0")
    engine.dispose()
    deadline = time.monotonic() + 15
    with server.api() as api:
        while time.monotonic() < deadline:
            runs = api.get("/runs").json()["runs"]
            if any(r["trigger"] == "schedule" for r in runs):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the due schedule queued no run")
        schedule = api.get("/schedules").json()[0]
    assert datetime.fromisoformat(schedule["next_at"]).timestamp() > time.time()


def test_pipeline_schedules_follow_the_pushed_file(repo: Repo, server: Server) -> None:
    push(
        repo,
        server,
        "on:\n  schedule: [{cron: '*/5 * * * *'}]\njobs:\n  a:\n    steps:\n      - run: echo\n",
    )
    with server.api("viewer") as viewer:
        schedules = viewer.get("/schedules").json()
    assert [(s["cron"], s["source"], s["ref"]) for s in schedules] == [
        ("*/5 * * * *", "pipeline", "refs/heads/main")
    ]
    push(repo, server, "jobs:\n  a:\n    steps:\n      - run: echo again\n")
    with server.api("viewer") as viewer:
        assert viewer.get("/schedules").json() == []
    repo.pipeline(
        "on:\n  schedule: [{cron: 'often'}]\njobs:\n  a:\n    steps:\n      - run: echo\n"
    )
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    assert "ignoring the schedule 'often': not a cron expression" in out


def test_chunked_pushes_land_and_oversize_ones_are_refused(repo: Repo, server: Server) -> None:
    import os

    repo.pipeline("on:\n  push: {branches: [main]}\njobs:\n  a:\n    steps:\n      - run: echo\n")
    (repo.path / "data.bin").write_bytes(os.urandom(1536 * 1024))  # > 1 MiB: sent chunked
    repo.commit()
    git(repo.path, "push", server.git_url(), "HEAD:refs/heads/data")
    listed = git(repo.path, "ls-remote", server.git_url(), "refs/heads/data").stdout
    assert listed.split()[0] == git(repo.path, "rev-parse", "HEAD").stdout.strip()
    (repo.path / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    repo.commit()
    result = git(repo.path, "push", server.git_url(), "HEAD:main", check=False)
    assert result.returncode != 0
    assert "413" in result.stderr
    # nothing else disturbed: the server still answers and has no run
    with server.api() as api:
        assert api.get("/runs").json()["runs"] == []
    assert httpx.get(f"{server.url}/api/v1/health").status_code == 200


def test_the_cache_is_shared_within_a_project_only(repo: Repo, server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    created = httpx.post(f"{server.url}/api/v1/projects", json={"name": "other"}, headers=admin)
    assert created.status_code == 201, created.text
    grant = httpx.put(
        f"{server.url}/api/v1/projects/other/members/member",
        json={"role": "member"},
        headers=admin,
    )
    assert grant.status_code == 200
    pipeline = (
        "jobs:\n  a:\n    steps:\n      - run: echo $RANDOM > out.txt\n        outputs: [out.txt]\n"
    )
    first = push(repo, server, pipeline)
    assert not server.wait_run(first)["steps"][0]["cached"]
    repo.commit("again")
    again = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)[0]
    assert server.wait_run(again)["steps"][0]["cached"], "same project: served from cache"
    other = run_ids(git(repo.path, "push", server.git_url("other"), "HEAD:main").stderr)[0]
    with httpx.Client(headers=admin) as client:
        deadline = time.monotonic() + 60
        while (run := client.get(f"{server.url}/api/v1/projects/other/runs/{other}").json())[
            "status"
        ] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert run["status"] == "succeeded"
    assert not run["steps"][0]["cached"], "another project never gets this project's outputs"


def test_the_committed_config_counts_and_a_broken_one_fails_the_run(
    repo: Repo, server: Server
) -> None:
    repo.write(".conveyor/config.toml", '[actions]\npaths = ["tools/actions"]\n')
    repo.write(
        "tools/actions/hello/action.yml",
        'name: Hello\ninputs:\n  who: {type: string}\nruns:\n  command: echo "hello $INPUT_WHO"\n',
    )
    pipeline = "jobs:\n  a:\n    steps:\n      - id: greet\n        uses: local/hello\n"
    run_id = push(repo, server, pipeline + "        with: {who: server}\n")
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run["error"]
    with server.api("viewer") as viewer:
        assert viewer.get(f"/runs/{run_id}/logs/a.greet").text == "hello server\n"
    repo.write(".conveyor/config.toml", "[actions]\npaths = \n")
    run = server.wait_run(push(repo, server, pipeline + "        with: {who: again}\n"))
    assert run["status"] == "failed"
    assert ".conveyor/config.toml: cannot read the settings" in run["error"]
    assert str(server.data) not in run["error"]


def test_a_runs_trigger_gives_its_event_and_pipeline(repo: Repo, server: Server) -> None:
    run_id = push(
        repo,
        server,
        "jobs:\n  a:\n    steps:\n      - run: echo ${{ event.trigger }} ${{ event.branch }}"
        " ${{ event.who }} ${{ event.commit }} ${{ pipeline.projectId }} ${{ pipeline.id }}\n",
    )
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run["error"]
    with server.api("member") as member:
        log = member.get(f"/runs/{run_id}/logs/a.step-1").text
        assert log == f"push main {run['who']} {run['commit']} demo conveyor.yml\n"
        created = member.post("/runs", json={"ref": "main"}).json()
        assert server.wait_run(created["id"])["status"] == "succeeded"
        manual = member.get(f"/runs/{created['id']}/logs/a.step-1").text
    assert manual.startswith("manual main member ")
