"""Several workers on one PostgreSQL: every run exactly once; killed workers lose nothing."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import (
    Server,
    git,
    make_server,
    run_ids,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path, postgres_url: str) -> Iterator[Server]:
    srv = make_server(tmp_path, postgres_url)
    srv.start(workers=0, extra=("--stale-after", "2"))
    yield srv
    srv.stop()


def test_concurrent_pushes_and_two_workers_run_each_run_exactly_once(
    repo: Repo, server: Server, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n"
        '      - run: echo "$CONVEYOR_RUN_ID" >> "$MARKS/$CONVEYOR_RUN_ID" && sleep 0.1\n'
        "        cache: false\n"
    )
    repo.commit()
    git(repo.path, "push", "-q", server.git_url(), "HEAD:main")  # the first run
    clones = []
    for i in range(4):  # four clones push four branches at once, five times each
        clone = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(repo.path), str(clone))
        clones.append(clone)
    outputs: list[str] = []

    def pushes(clone: Path, i: int) -> None:
        for j in range(5):
            git(
                clone,
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@e",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                f"c{i}{j}",
            )
            outputs.append(git(clone, "push", server.git_url(), f"HEAD:refs/heads/b{i}").stderr)

    threads = [threading.Thread(target=pushes, args=(c, i)) for i, c in enumerate(clones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [run_id for out in outputs for run_id in run_ids(out)]
    assert len(ids) == 20 and len(set(ids)) == 20, outputs
    env = {"MARKS": str(marks)}
    admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
    load = httpx.get(f"{server.url}/api/v1/server", headers=admin).json()
    assert load["runs"]["queued"] == 21 and load["busy_workers"] == {}
    viewer = {"Authorization": f"Bearer {server.tokens['lead']}"}
    assert httpx.get(f"{server.url}/api/v1/server", headers=viewer).status_code == 403
    # The steps write their marks outside any run's workspace, which the sandbox forbids:
    # this test is about claims, so its workers opt out of the sandbox explicitly.
    workers = [server.start_worker(env, "--sandbox", "none") for _ in range(2)]
    runs = [server.wait_run(run_id, timeout=180) for run_id in ids]
    assert {r["status"] for r in runs} == {"succeeded"}, [r.get("error") for r in runs]
    for run_id in ids:
        assert (marks / run_id).read_text() == f"{run_id}\n", f"run {run_id} ran more than once"
    assert len({r["worker"] for r in runs}) == 2, "both workers must have taken runs"
    # every run's result is on its branch's moving ref (concurrent updates retried)
    work = tmp_path / "fetch"
    git(tmp_path, "init", "-q", str(work))
    git(work, "fetch", "-q", server.git_url(), "refs/conveyor/*:refs/conveyor/*")
    for i in range(4):
        history = git(work, "rev-list", f"refs/conveyor/results/b{i}").stdout.split()
        mine = {r["result_commit"] for r in runs if r["ref"] == f"refs/heads/b{i}"}
        assert len(mine) == 5 and mine <= set(history)
    for proc in workers:
        proc.send_signal(signal.SIGTERM)


def test_a_killed_worker_leaves_an_interrupted_run_that_resumes(repo: Repo, server: Server) -> None:
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n      - run: mkdir -p out && echo 1 > out/one.txt\n"
        "        outputs: [out/one.txt]\n"
        "      - run: sleep 60\n"
    )
    repo.commit()
    first = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)[0]
    second = run_ids(git(repo.path, "push", server.git_url(), "HEAD:refs/heads/other").stderr)[0]
    worker = server.start_worker()
    server.wait_run(first, until=("running",))
    deadline = time.monotonic() + 30
    with server.api() as api:  # the first step is done and recorded, the second runs
        while len(api.get(f"/runs/{first}/steps").json()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    worker.kill()
    worker.wait()
    run = server.wait_run(first, timeout=30)
    assert run["status"] == "interrupted", run
    assert "worker" in run["error"]
    with server.api() as api:
        assert api.get(f"/runs/{second}").json()["status"] == "queued", "queued runs stay queued"
        resumed = api.post(f"/runs/{first}/resume").json()
        api.post(f"/runs/{second}/cancel")
    # no half-written artifact: the result refs of the interrupted run do not exist
    refs = git(repo.path, "ls-remote", server.git_url(), "refs/conveyor/*").stdout
    assert first not in refs
    server.start_worker()
    done = server.wait_run(resumed["id"], until=("running",))
    assert done["trigger"] == f"resume:{first}"


def test_a_killed_server_loses_nothing(repo: Repo, tmp_path: Path) -> None:
    srv = make_server(tmp_path / "sqlite", None)
    srv.start(extra=("--stale-after", "2"))
    try:
        repo.pipeline("jobs:\n  a:\n    steps:\n      - run: sleep 60\n")
        repo.commit()
        running = run_ids(git(repo.path, "push", srv.git_url(), "HEAD:main").stderr)[0]
        srv.wait_run(running, until=("running",))
        queued = run_ids(git(repo.path, "push", srv.git_url(), "HEAD:refs/heads/b").stderr)[0]
        srv.procs[0].kill()  # SIGKILL: no clean-up at all
        srv.procs[0].wait()
        srv.start(workers=0, extra=("--stale-after", "2"))
        run = srv.wait_run(running, timeout=30)
        assert run["status"] == "interrupted" and "worker stopped" in run["error"]
        with srv.api() as api:
            assert api.get(f"/runs/{queued}").json()["status"] == "queued"
            assert api.get(f"/runs/{running}/steps").json()[0]["status"] == "cancelled"
        assert not (srv.data / "projects/demo/work" / running).exists(), "worktree left behind"
    finally:
        srv.stop()
