"""A lead points a project at the HTCondor pool: pushed runs execute there."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    if not (os.environ.get("CONDOR_CONFIG") and importlib.util.find_spec("htcondor2")):
        engine_missing("htcondor", "HTCondor pool not configured; scripts/engines/htcondor.sh up")
    srv = make_server(tmp_path, None)
    srv.start(extra=("--allow-executor", "htcondor"))
    yield srv
    srv.stop()


def test_a_project_configured_for_htcondor_runs_its_pushes_on_the_pool(
    repo: Repo, server: Server
) -> None:
    with server.api("lead") as lead:
        answer = lead.put("/settings", json={"executor": "htcondor", "executors": {"htcondor": {}}})
        assert answer.status_code == 200, answer.text
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n"
        '      - run: mkdir -p out && echo "on $(hostname) as $CONVEYOR_STEP_ID" > out/where.txt\n'
        "        outputs: [out/where.txt]\n"
    )
    repo.commit()
    run_id = run_ids(git(repo.path, "push", server.git_url(), "main").stderr)[0]
    run = server.wait_run(run_id, timeout=180)
    assert run["status"] == "succeeded", run
    assert run["executor"] == "htcondor"
    (step,) = run["steps"]  # show --json's shape: where the pool ran the step
    assert step["executor"] == "htcondor" and step["ran_on"]["job"], step
    git(repo.path, "fetch", "-q", server.git_url(), "refs/conveyor/*:refs/conveyor/*")
    shown = git(repo.path, "show", f"refs/conveyor/results/{run_id}:out/where.txt").stdout
    assert shown.endswith("as a.step-1\n")
