"""What the runner guarantees on every executor: store, cache, timeout, retries."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.executors.base import (
    Completion,
    DelegatingExecutor,
    Executor,
    Handle,
    Invocation,
)
from conveyor.executors.registry import load_executor
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunRequest, start_run
from tests.contract.conftest import backend_settings, kind

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


class _Recording(DelegatingExecutor):
    """Wraps an executor and records the order of its calls."""

    def __init__(self, inner: Executor, calls: list[str]) -> None:
        super().__init__(inner)
        self.calls = calls

    def submit(self, invocation: Invocation) -> Handle:
        self.calls.append(f"submit {invocation.key.split('/')[1]}")
        return self.inner.submit(invocation)

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        self.calls.append("poll")
        return self.inner.poll(handles, timeout)


def test_python_datums_run_together_and_are_cached_per_datum(
    git_project: Path, executor_name: str
) -> None:
    (git_project / "fn").mkdir()
    (git_project / "fn" / "size.py").write_text(
        "def size(path):\n    return {'bytes': len(open(path, 'rb').read())}\n"
    )
    (git_project / "data").mkdir()
    for name, text in (("a", "x"), ("b", "yy"), ("c", "zzz")):
        (git_project / "data" / f"{name}.bin").write_text(text)
    project = _pipeline(
        git_project,
        """\
        jobs:
          sizes:
            steps:
              - python: fn.size:size
                datums: data/*.bin
        """,
    )
    calls: list[str] = []
    name = kind(executor_name)
    recording = _Recording(load_executor(name, backend_settings(executor_name)), calls)
    try:
        run = start_run(project, RunRequest(parallelism=3), executors={name: recording})
    finally:
        recording.close()
    assert run.status == RunStatus.SUCCEEDED
    results = git_project / "results" / "sizes" / "step-1"
    assert (results / "c.bin.json").read_text() == '{\n  "bytes": 3\n}\n'
    # every datum is submitted before the first poll: a batch executor gets them at once
    assert calls[:3] == [f"submit sizes.step-1[{n}.bin]" for n in "abc"]
    assert calls[3] == "poll"

    (git_project / "data" / "b.bin").write_text("changed")
    second = start_run(Project(git_project), RunRequest())
    steps = {s.step_id: s for s in Project(git_project).records.step_runs(second.id)}
    assert {k for k, s in steps.items() if not s.cached} == {"sizes.step-1[b.bin]"}
    assert (results / "b.bin.json").read_text() == '{\n  "bytes": 7\n}\n'
