"""Server runs read the project's datasets (`datasets:`), on a real server with a
separate `conveyor worker`, on SQLite and PostgreSQL: the ref is resolved once when the
run starts and recorded, a resumed run reads the same commit, lineage over the API and
the web reaches the commit, and the run's JSON is `conveyor show --json`'s shape
(`number`, each step's `executor`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids
from tests.integration.web_support import web_client

pytestmark = pytest.mark.integration

PIPELINE = """\
datasets:
  data: images@master:/raw
jobs:
  j:
    steps:
      - id: copy
        run: cat data/a.txt > out.txt
        inputs: [data]
        outputs: [out.txt]
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    database = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    srv = make_server(tmp_path, database)
    srv.start(workers=0)
    srv.start_worker()
    yield srv
    srv.stop()


def push(repo: Repo, server: Server) -> str:
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    ids = run_ids(out)
    assert len(ids) == 1, out
    return ids[0]


def test_a_server_run_reads_the_projects_dataset_at_one_commit(repo: Repo, server: Server) -> None:
    with server.api("lead") as lead, server.api("member") as member:
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        first = member.put("/datasets/images/files/raw/a.txt", content=b"one\n").json()["id"]
    repo.pipeline(PIPELINE)
    run_id = push(repo, server)
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run
    with server.api("viewer") as viewer:
        run = viewer.get(f"/runs/{run_id}").json()
        assert run["datasets"] == [
            {
                "run": run_id,
                "path": "data",
                "dataset": "images",
                "commit": first,
                "ref": "images@master:/raw",
            }
        ]
        assert run["number"] == 1 and run["pipeline"] == "pipeline"
        (step,) = run["steps"]
        assert step["id"] == "j.copy" and step["executor"] == "local"
        assert step["log"] == f"/api/v1/projects/demo/runs/{run_id}/logs/j.copy"
        listed = viewer.get("/runs").json()["runs"]
        assert [(r["id"], r["number"]) for r in listed] == [(run_id, 1)]
        assert viewer.get("/runs/%231").json()["id"] == run_id  # "#1"
        assert viewer.get("/runs/1").json()["id"] == run_id
        missing = viewer.get("/runs/%2399")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "project 'demo' has no run #99"
        assert viewer.get(f"/runs/{run_id}/artifacts/out.txt").content == b"one\n"
        lineage = viewer.get("/lineage", params={"path": "out.txt"}).json()
        (made,) = lineage["produced_by"]
        assert [(d["dataset"], d["commit"]) for d in made["datasets"]] == [("images", first)]

    # the branch moves on; a resumed run still reads the commit its original read
    with server.api("member") as member:
        member.put("/datasets/images/files/raw/a.txt", content=b"two\n")
        resumed = member.post(f"/runs/{run_id}/resume").json()["id"]
    again = server.wait_run(resumed)
    assert again["status"] == "succeeded", again
    with server.api("viewer") as viewer:
        again = viewer.get(f"/runs/{resumed}").json()
        assert [d["commit"] for d in again["datasets"]] == [first]
        assert again["number"] == 2 and again["steps"][0]["cached"] is True
        assert viewer.get(f"/runs/{resumed}/artifacts/out.txt").content == b"one\n"

    # the CLI: show --remote and runs --remote name runs by number too
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    env = {"CONVEYOR_TOKEN": server.tokens["viewer"]}
    shown = repo.run("show", "#1", "--remote", env=env)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].startswith(f"run       {run_id}  #1  (succeeded) · {server.url}/ui/")
    assert f"dataset   data: images@{first} (images@master:/raw)" in lines
    as_json = repo.run("show", "2", "--remote", "--json", env=env)
    assert as_json.code == 0 and as_json.json()["id"] == resumed
    assert as_json.json()["number"] == 2 and as_json.json()["steps"][0]["cached"] is True
    table = repo.run("runs", "--remote", env=env)
    assert [line.split()[:2] for line in table.out.splitlines()] == [
        ["#2", resumed],
        ["#1", run_id],
    ]
    unknown = repo.run("show", "#99", "--remote", env=env)
    assert unknown.code == 2 and "has no run #99" in unknown.err

    # the dataset's page lists the runs that read the commit
    with web_client(server, "viewer") as web:
        page = web.get("/ui/p/demo/datasets/images", params={"ref": first})
        assert page.status_code == 200
        assert f"/ui/p/demo/runs/{run_id}" in page.text
        assert f"/ui/p/demo/runs/{resumed}" in page.text
        shown = web.get(f"/ui/p/demo/runs/{run_id}").text
        assert '<span class="run-number">#1</span>' in shown
        step_page = web.get(f"/ui/p/demo/runs/{run_id}/steps/j.copy").text
        assert f"Run #1 <code>{run_id}</code>" in step_page


def test_a_pushed_directory_at_a_dataset_path_fails_the_run_with_one_sentence(
    repo: Repo, server: Server
) -> None:
    with server.api("lead") as lead:
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
    repo.pipeline(PIPELINE)
    repo.write("data/mine.txt", "committed\n")
    run = server.wait_run(push(repo, server))
    assert run["status"] == "failed"
    assert run["error"].startswith("datasets: data already exists and no run checked it out")
    assert "\n" not in run["error"]


def test_a_dataset_of_no_such_name_fails_the_run(repo: Repo, server: Server) -> None:
    repo.pipeline(PIPELINE.replace("images@master", "nothing@master"))
    run = server.wait_run(push(repo, server))
    assert run["status"] == "failed"
    assert run["error"].startswith("there is no dataset nothing")
