"""What the runner guarantees on every executor: store, cache, timeout, retries."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunRequest, start_run

pytestmark = pytest.mark.integration


def _pipeline(path: Path, text: str) -> Project:
    (path / "conveyor.yml").write_text(textwrap.dedent(text))
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "p"], cwd=path, check=True)
    return Project(path)


def test_outputs_are_stored_and_cache_hits_match(git_project: Path) -> None:
    (git_project / "in.txt").write_text("a\nb\nc\n")
    project = _pipeline(
        git_project,
        """\
        jobs:
          count:
            steps:
              - run: mkdir -p out && wc -l < in.txt > out/n.txt
                inputs: [in.txt]
                outputs: [out/n.txt]
          double:
            steps:
              - run: echo $(( $(cat out/n.txt) * 2 )) > twice.txt
                inputs: [out/n.txt]
                outputs: [twice.txt]
        """,
    )
    first = start_run(project, RunRequest())
    assert first.status == RunStatus.SUCCEEDED
    assert (git_project / "twice.txt").read_text().strip() == "6"
    steps = {s.step_id: s for s in project.records.step_runs(first.id)}
    digest = steps["double.step-1"].outputs[0].digest
    assert project.store.has(digest)
    second = start_run(Project(git_project), RunRequest())
    again = {s.step_id: s for s in Project(git_project).records.step_runs(second.id)}
    assert all(s.cached for s in again.values())
    assert again["double.step-1"].outputs[0].digest == digest


def test_timeout_fails_the_step(git_project: Path) -> None:
    project = _pipeline(
        git_project,
        """\
        jobs:
          slow:
            steps:
              - run: sleep 300
                timeout: 3s
        """,
    )
    run = start_run(project, RunRequest())
    assert run.status == RunStatus.FAILED
    step = project.records.step_runs(run.id)[0]
    assert step.status == StepStatus.FAILED
    assert "timed out" in (step.error or "")


def test_retries_run_the_step_again(git_project: Path) -> None:
    project = _pipeline(
        git_project,
        """\
        jobs:
          flaky:
            steps:
              - run: echo attempt $CONVEYOR_ATTEMPT; test "$CONVEYOR_ATTEMPT" -ge 2
                retries: 2
        """,
    )
    run = start_run(project, RunRequest())
    assert run.status == RunStatus.SUCCEEDED
    step = project.records.step_runs(run.id)[0]
    assert step.attempt == 2
    assert step.log_path and "attempt 2" in Path(step.log_path).read_text()


def test_failure_exit_code_is_the_steps(git_project: Path) -> None:
    project = _pipeline(
        git_project,
        """\
        jobs:
          bad:
            steps:
              - run: exit 5
        """,
    )
    run = start_run(project, RunRequest())
    assert run.status == RunStatus.FAILED
    assert project.records.step_runs(run.id)[0].exit_code == 5
