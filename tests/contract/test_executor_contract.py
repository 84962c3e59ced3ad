"""What every executor must do, driven through the contract directly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.domain.types import Resources
from conveyor.executors.base import Completion, Executor, Handle, Invocation
from tests.contract.conftest import backend_settings, kind

pytestmark = pytest.mark.integration
DEADLINE = 180.0  # seconds: generous for a batch system; never a speed assertion
OUTLIVE_THEIR_SUBMITTER = {"local", "htcondor", "htcondor-shared", "dask"}
"""Backends whose steps go on running when the process that submitted them dies (a
Spark task ends its step when it loses the driver; Dask tasks are fire-and-forget)."""
_ORPHANING = """
import json, os, sys
from pathlib import Path
from conveyor.executors.base import Invocation
from conveyor.executors.registry import load_executor

name, settings, workdir = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
executor = load_executor(name, settings)
invocation = Invocation(
    key="run0/orphan/1", command="sleep 300", env={}, workdir=workdir,
    log_path=workdir.parent / "logs" / "orphan.log",
)
handle = executor.submit(invocation)
executor.poll([handle], 0)  # batch backends hand their buffer over on poll
print(json.dumps([handle.key, handle.backend_id]), flush=True)
os._exit(0)  # dies without close: what it started is left behind
"""


def _invocation(workdir: Path, key: str, command: str, **extra: object) -> Invocation:
    return Invocation(
        key=f"run0/{key}/1",
        command=command,
        env={"CONVEYOR_STEP_ID": key, **extra.pop("env", {})},  # type: ignore[dict-item]
        workdir=workdir,
        log_path=workdir.parent / "logs" / f"{key}.log",
        **extra,  # type: ignore[arg-type]
    )


def _wait(executor: Executor, handles: list[Handle]) -> dict[str, Completion]:
    done: dict[str, Completion] = {}
    deadline = time.monotonic() + DEADLINE
    while len(done) < len(handles):
        assert time.monotonic() < deadline, f"only {len(done)}/{len(handles)} completed"
        pending = [h for h in handles if h.key not in done]
        for completion in executor.poll(pending, 0.5):
            assert completion.key not in done, "a completion is reported once"
            done[completion.key] = completion
    return done


def test_success_exit_code_and_log(make_executor: Callable[[], Executor], workdir: Path) -> None:
    executor = make_executor()
    inv = _invocation(
        workdir,
        "ok",
        "echo to-stdout; echo to-stderr >&2; echo $GREETING",
        env={"GREETING": "hi there"},
    )
    done = _wait(executor, [executor.submit(inv)])
    completion = done[inv.key]
    assert completion.state == "exited"
    assert completion.exit_code == 0
    log = inv.log_path.read_text()
    assert "to-stdout" in log and "to-stderr" in log and "hi there" in log


def test_failure_keeps_the_exit_code(make_executor: Callable[[], Executor], workdir: Path) -> None:
    executor = make_executor()
    inv = _invocation(workdir, "fail", "echo failing; exit 7")
    completion = _wait(executor, [executor.submit(inv)])[inv.key]
    assert completion.state == "exited"
    assert completion.exit_code == 7
    assert "failing" in inv.log_path.read_text()


def test_inputs_are_readable_and_outputs_come_back(
    make_executor: Callable[[], Executor], workdir: Path
) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "in.txt").write_text("3\n4\n")
    executor = make_executor()
    inv = _invocation(
        workdir,
        "io",
        "mkdir -p out/deep && wc -l < data/in.txt > out/count.txt && echo x > out/deep/y.txt && echo z > top.txt",
        inputs=("data/in.txt",),
        outputs=("out", "top.txt"),
    )
    completion = _wait(executor, [executor.submit(inv)])[inv.key]
    assert completion.exit_code == 0, inv.log_path.read_text()
    assert (workdir / "out" / "count.txt").read_text().strip() == "2"
    assert (workdir / "out" / "deep" / "y.txt").read_text() == "x\n"
    assert (workdir / "top.txt").read_text() == "z\n"


def test_cancel_ends_a_running_invocation(
    make_executor: Callable[[], Executor], workdir: Path
) -> None:
    executor = make_executor()
    inv = _invocation(workdir, "slow", "sleep 300")
    handle = executor.submit(inv)
    assert executor.poll([handle], 1.0) == []  # still running
    executor.cancel([handle])
    completion = _wait(executor, [handle])[inv.key]
    assert completion.state == "cancelled"


def test_many_at_once(make_executor: Callable[[], Executor], workdir: Path) -> None:
    executor = make_executor()
    invocations = [
        _invocation(workdir, f"n{i}", f"echo {i} > n{i}.txt; exit {i % 3}", outputs=(f"n{i}.txt",))
        for i in range(12)
    ]
    handles = [executor.submit(inv) for inv in invocations]
    done = _wait(executor, handles)
    for i, inv in enumerate(invocations):
        assert done[inv.key].exit_code == i % 3
        assert (workdir / f"n{i}.txt").read_text().strip() == str(i)


def test_resources_are_accepted(make_executor: Callable[[], Executor], workdir: Path) -> None:
    executor = make_executor()
    inv = _invocation(
        workdir, "res", "echo ok", resources=Resources(cpus=1, memory_mb=64, disk_mb=10)
    )
    assert _wait(executor, [executor.submit(inv)])[inv.key].exit_code == 0


def test_default_parallelism_is_positive(make_executor: Callable[[], Executor]) -> None:
    assert make_executor().default_parallelism >= 1


def test_recover_ends_what_a_dead_process_left(
    make_executor: Callable[[], Executor], executor_name: str, workdir: Path
) -> None:
    settings = json.dumps(backend_settings(executor_name))
    child = subprocess.run(
        [sys.executable, "-c", _ORPHANING, kind(executor_name), settings, str(workdir)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    key, backend_id = json.loads(child.stdout.strip().splitlines()[-1])
    recorded = Handle(key, backend_id)  # what the records keep: two strings
    unknown = Handle("run0/unknown/1", "not-a-handle-of-any-backend")

    executor = make_executor()  # a fresh process's instance
    first = executor.recover([recorded, unknown])
    assert [r.key for r in first] == [key, unknown.key]  # one answer per handle
    assert first[0].ended is (executor_name in OUTLIVE_THEIR_SUBMITTER), first[0].message
    assert first[1].ended is False
    # once ended, nothing is left to end (a killed process may take a moment to go)
    deadline = time.monotonic() + DEADLINE
    while executor.recover([recorded])[0].ended:
        assert time.monotonic() < deadline, "the recovered step is still running"
        time.sleep(0.5)


def test_started_says_when_an_invocation_runs(
    make_executor: Callable[[], Executor], workdir: Path
) -> None:
    """The runner counts a step's timeout from here: a running invocation is reported
    started (soon after its submit: never asserted how soon), an unknown one is not."""
    executor = make_executor()
    inv = _invocation(workdir, "runs", "touch began; sleep 300")
    handle = executor.submit(inv)
    stranger = Handle("run0/stranger/1", "nothing")
    deadline = time.monotonic() + DEADLINE
    while inv.key not in executor.started([handle, stranger]):
        assert time.monotonic() < deadline, "the invocation never started"
        assert executor.poll([handle], 0.5) == []
    assert executor.started([stranger]) == []
    executor.cancel([handle])
    assert _wait(executor, [handle])[inv.key].state == "cancelled"


def test_capacity_of_a_working_backend_is_not_zero(
    make_executor: Callable[[], Executor], workdir: Path
) -> None:
    executor = make_executor()
    inv = _invocation(workdir, "cap", "echo ok")
    assert _wait(executor, [executor.submit(inv)])[inv.key].exit_code == 0
    capacity = executor.capacity()
    assert capacity.slots is None or capacity.slots > 0, capacity.why
    assert capacity.patience is None or capacity.patience > 0
    assert executor.capacity() == capacity  # asked again at once: the cached answer
