"""The server journey over real git: push, a run per push, results back through git."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import (
    Server,
    git,
    make_server,
    run_ids,
)

pytestmark = pytest.mark.integration

PIPELINE = """\
jobs:
  make:
    steps:
      - run: mkdir -p out && echo "hello from $CONVEYOR_RUN_ID" > out/hello.txt
          && head -c 1100000 /dev/zero > out/big.bin && mkdir -p out/tables
          && echo "a,b" > out/tables/t.csv
        outputs: [out/hello.txt, out/big.bin, out/tables]
"""


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    database = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    srv = make_server(tmp_path, database)
    srv.start()
    yield srv
    srv.stop()


def push(repo: Repo, server: Server, *refs: str, who: str = "member") -> str:
    result = git(repo.path, "push", server.git_url(who=who), *refs)
    return result.stderr


def test_push_runs_the_pipeline_and_results_come_back_through_git(
    repo: Repo, server: Server
) -> None:
    repo.pipeline(PIPELINE)
    repo.commit("first")
    out = push(repo, server, "main")
    ids = run_ids(out)
    assert len(ids) == 1, out
    assert f"remote: conveyor: watch it: {server.url}/ui/p/demo/runs/{ids[0]}" in out
    run = server.wait_run(ids[0])
    assert run["status"] == "succeeded", run
    head = git(repo.path, "rev-parse", "HEAD").stdout.strip()
    assert run["commit"] == head and run["trigger"] == "push" and run["who"] == "member"

    git(repo.path, "fetch", "-q", server.git_url(), "refs/conveyor/*:refs/conveyor/*")
    result_ref = f"refs/conveyor/results/{ids[0]}"
    shown = git(repo.path, "show", f"{result_ref}:out/hello.txt").stdout
    assert shown == f"hello from {ids[0]}\n"
    assert git(repo.path, "show", f"{result_ref}:out/tables/t.csv").stdout == "a,b\n"
    pointer = git(repo.path, "show", f"{result_ref}:out/big.bin").stdout
    assert pointer.startswith("conveyor-pointer v1\n") and "size 1100000" in pointer
    # on top of the run's commit; the moving branch ref agrees; the user's branch is untouched
    assert git(repo.path, "rev-parse", f"{result_ref}^").stdout.strip() == head
    moving = git(repo.path, "rev-parse", "refs/conveyor/results/main").stdout.strip()
    assert moving == git(repo.path, "rev-parse", result_ref).stdout.strip()
    remote_main = git(repo.path, "ls-remote", server.git_url(), "refs/heads/main").stdout
    assert remote_main.split()[0] == head
    assert run["result_commit"] == moving
    with server.api("viewer") as api:
        lineage = api.get("/lineage", params={"path": "out/hello.txt"}).json()
        assert [(p["run"], p["step"]) for p in lineage["produced_by"]] == [(ids[0], "make.step-1")]
        blob = api.get(f"/runs/{ids[0]}/artifacts/out/tables/t.csv")
        assert blob.status_code == 200 and blob.content == b"a,b\n"

    # the next run's result has the previous one as second parent: the moving ref only
    # fast-forwards, so the same plain fetch keeps working
    repo.commit("second")
    second = run_ids(push(repo, server, "main"))[0]
    assert server.wait_run(second)["status"] == "succeeded"
    git(repo.path, "fetch", "-q", server.git_url(), "refs/conveyor/*:refs/conveyor/*")
    parents = git(repo.path, "rev-parse", "refs/conveyor/results/main^@").stdout.split()
    assert parents == [git(repo.path, "rev-parse", "HEAD").stdout.strip(), moving]


def test_tags_and_branches_follow_the_on_triggers(repo: Repo, server: Server) -> None:
    repo.pipeline(
        "on:\n  push: {branches: [main], tags: ['v*']}\n"
        + "jobs:\n  a:\n    steps:\n      - run: echo hi\n"
    )
    repo.commit()
    assert len(run_ids(push(repo, server, "main"))) == 1
    git(repo.path, "branch", "feature")
    out = push(repo, server, "feature")
    assert run_ids(out) == [] and "does not match the pipeline's `on:`" in out
    git(repo.path, "tag", "v1.0")
    git(repo.path, "tag", "other")
    out = push(repo, server, "v1.0", "other")
    ids = run_ids(out)
    assert len(ids) == 1, out
    assert server.wait_run(ids[0])["trigger"] == "tag"


def test_a_malformed_pipeline_leaves_a_failed_run_and_nothing_else(
    repo: Repo, server: Server
) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - runn: echo hi\n")
    repo.commit()
    out = push(repo, server, "main")
    assert "failed at once: conveyor.yml:4:9: unknown key 'runn'" in out, out
    with server.api() as api:
        runs = api.get("/runs").json()["runs"]
    assert [r["status"] for r in runs] == ["failed"]
    assert "did you mean 'run'" in runs[0]["error"]
    assert f"remote: conveyor: see it: {server.url}/ui/p/demo/runs/{runs[0]['id']}" in out, out
    # the push itself landed: the branch is on the server
    assert git(repo.path, "ls-remote", server.git_url(), "main").stdout


def test_pushes_are_refused_without_a_valid_token_or_role(repo: Repo, server: Server) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo hi\n")
    repo.commit()
    bad = server.git_url().replace(server.tokens["member"], "cvy_wrong")
    assert git(repo.path, "push", bad, "main", check=False).returncode != 0
    viewer = git(repo.path, "push", server.git_url(who="viewer"), "main", check=False)
    assert viewer.returncode != 0 and "403" in viewer.stderr
    unknown = server.git_url().replace("/demo.git", "/nope.git")
    assert git(repo.path, "push", unknown, "main", check=False).returncode != 0
    # a viewer may fetch; nobody may write the server's result refs
    assert push(repo, server, "main")
    git(repo.path, "fetch", "-q", server.git_url(who="viewer"), "main")
    forged = git(repo.path, "push", server.git_url(), "HEAD:refs/conveyor/results/x", check=False)
    assert forged.returncode != 0 and "belongs to the server" in forged.stderr
