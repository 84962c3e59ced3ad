"""What every executor must do, driven through the contract directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.domain.types import Resources
from conveyor.executors.base import Completion, Executor, Handle, Invocation

pytestmark = pytest.mark.integration
DEADLINE = 180.0  # seconds: generous for a batch system; never a speed assertion


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
