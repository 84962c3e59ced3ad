"""A .drone.yml pushed to a server: every branch and tag push queues a run, its
trigger/when are checked against the ref and event that queued it, and the pushed file
cannot allow itself privileged containers or host volumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = pytest.mark.integration

DRONE = """\
kind: pipeline
name: ci
steps:
  - name: test
    commands: [echo "test on $DRONE_BRANCH$DRONE_TAG"]
  - name: release
    commands:
      - echo "release ${DRONE_TAG##v}"
    when:
      event: tag
---
kind: pipeline
name: main-only
trigger:
  branch: [main]
steps:
  - name: deploy
    commands: [echo deploy]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start()
    yield srv
    srv.stop()


def steps_of(server: Server, run_id: str) -> dict[str, dict[str, object]]:
    with server.api("viewer") as viewer:
        return {s["id"]: s for s in viewer.get(f"/runs/{run_id}").json()["steps"]}


def test_a_branch_push_and_a_tag_push_meet_their_conditions(repo: Repo, server: Server) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    pushed = git(repo.path, "push", server.git_url(), "HEAD:refs/heads/dev").stderr
    (branch_run,) = run_ids(pushed)
    assert server.wait_run(branch_run)["status"] == "succeeded"
    steps = steps_of(server, branch_run)
    assert steps["ci.test"]["status"] == "succeeded"
    assert steps["ci.release"]["status"] == "skipped"
    assert steps["main-only.deploy"]["status"] == "skipped"
    assert "this run's branch is 'dev'" in str(steps["main-only.deploy"]["error"])

    git(repo.path, "tag", "v2.0")
    pushed = git(repo.path, "push", server.git_url(), "refs/tags/v2.0").stderr
    (tag_run,) = run_ids(pushed)
    assert server.wait_run(tag_run)["status"] == "succeeded"
    steps = steps_of(server, tag_run)
    assert steps["ci.release"]["status"] == "succeeded"
    with server.api("viewer") as viewer:
        log = viewer.get(f"/runs/{tag_run}/logs/ci.release").text
    assert log == "release 2.0\n"


def test_a_pushed_file_cannot_allow_itself_privileged_containers(
    repo: Repo, server: Server
) -> None:
    repo.write(
        ".drone.yml",
        "kind: pipeline\nname: ci\nsteps:\n  - name: root\n    image: alpine\n"
        "    privileged: true\n    commands: [id]\n",
    )
    repo.write(".conveyor/config.toml", "[containers]\nprivileged = true\n")
    repo.commit()
    (run_id,) = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    assert server.wait_run(run_id)["status"] == "failed"
    error = str(steps_of(server, run_id)["ci.root"]["error"])
    assert error.startswith("step ci.root asks for a privileged container, which this project")


def test_a_pushed_file_cannot_allow_itself_host_volumes(repo: Repo, server: Server) -> None:
    repo.write(
        ".drone.yml",
        "kind: pipeline\nname: ci\nsteps:\n  - name: peek\n    image: alpine\n"
        "    commands: [ls /host]\n    volumes: [{name: root, path: /host}]\n"
        "volumes:\n  - name: root\n    host: {path: /}\n",
    )
    repo.write(".conveyor/config.toml", '[containers]\nhost_volumes = ["/"]\n')
    repo.commit()
    (run_id,) = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    assert server.wait_run(run_id)["status"] == "failed"
    error = str(steps_of(server, run_id)["ci.peek"]["error"])
    assert error.startswith("step ci.peek: the host directory / may not be mounted: this project")
