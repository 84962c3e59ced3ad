"""Dask: a running step's log as it is written (``conveyor logs -f``), and step
``resources`` as Dask worker resources, against real schedulers and workers: the engine's
cluster for logs, a private one whose worker declares ``--resources`` for the rest."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.domain.types import Resources
from conveyor.executors.base import Completion, Handle, Invocation
from conveyor.executors.dask.executor import DaskExecutor
from tests.engines import engine_missing
from tests.integration.test_dask_waiting import START, _daemon, _free_port, _threads

pytestmark = pytest.mark.integration
PATIENCE = 120.0  # seconds before a test gives up waiting: never a speed assertion


@pytest.fixture
def scheduler() -> str:
    found = os.environ.get("CONVEYOR_DASK_SCHEDULER")
    if not found:
        engine_missing("dask", "dask engine not configured; start scripts/engines/dask.sh up")
    return str(found)


def _invocation(workdir: Path, key: str, command: str, **extra: object) -> Invocation:
    workdir.mkdir(exist_ok=True)
    return Invocation(
        key=f"run0/{key}/1",
        command=command,
        env={},
        workdir=workdir,
        log_path=workdir.parent / "logs" / f"{key}.log",
        **extra,  # type: ignore[arg-type]
    )


def _until_done(executor: DaskExecutor, handle: Handle) -> Completion:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        done = executor.poll([handle], 0.5)
        if done:
            return done[0]
    raise AssertionError(f"{handle.key} did not end")


def test_a_running_steps_output_reaches_its_log_before_it_ends(
    scheduler: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = f"echo first; while [ ! -e {go} ]; do sleep 0.1; done; echo second"
    inv = _invocation(tmp_path / "work", "live", command)
    executor = DaskExecutor({"scheduler": scheduler})
    try:
        handle = executor.submit(inv)
        deadline = time.monotonic() + PATIENCE
        while inv.log_path.read_bytes() != b"first\n":
            assert not executor.poll([handle], 0.2), "the step ended before it was told to"
            assert time.monotonic() < deadline, "the first line never reached the log"
        go.touch()  # only now may the step end
        done = _until_done(executor, handle)
        assert (done.state, done.exit_code) == ("exited", 0)
        assert inv.log_path.read_bytes() == b"first\nsecond\n"  # each byte once
    finally:
        executor.close()


@pytest.fixture
def resource_cluster(tmp_path: Path) -> Iterator[str]:
    """A private scheduler and one worker declaring CPU=2, MEMORY=2 GiB and no GPU."""
    pytest.importorskip("distributed", reason="needs dask (pip install 'conveyor[dask]')")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask"
    logs.mkdir()
    scheduler = _daemon(
        "scheduler", logs / "scheduler.log", "--host", "127.0.0.1", "--port", str(port),
        "--no-dashboard",
    )  # fmt: skip
    worker = _daemon(
        "worker", logs / "worker.log", address, "--host", "127.0.0.1", "--nthreads", "2",
        "--no-nanny", "--no-dashboard", "--local-directory", str(logs / "work"),
        "--resources", f"CPU=2,MEMORY={2 << 30}",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START
        while True:
            assert scheduler.poll() is None and worker.poll() is None
            assert time.monotonic() < deadline, "the private Dask cluster did not start"
            try:
                if _threads(address) >= 1:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(30)


def _restrictions(executor: DaskExecutor, handle: Handle) -> object:
    """The resource restrictions the scheduler holds for the step's task."""

    def read(dask_scheduler: object, key: str) -> object:
        found = dask_scheduler.tasks.get(key)  # type: ignore[attr-defined]
        return None if found is None else found.resource_restrictions

    return executor._client.run_on_scheduler(read, key=handle.backend_id)


def test_step_resources_become_the_tasks_dask_resources(
    resource_cluster: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = f"while [ ! -e {go} ]; do sleep 0.1; done; echo done"
    inv = _invocation(
        tmp_path / "work", "sized", command, resources=Resources(cpus=2, memory_mb=1024)
    )
    executor = DaskExecutor({"scheduler": resource_cluster})
    try:
        handle = executor.submit(inv)
        executor.poll([handle], 0)  # handed over to the scheduler
        assert _restrictions(executor, handle) == {"CPU": 2.0, "MEMORY": float(1 << 30)}
        go.touch()
        done = _until_done(executor, handle)
        assert (done.state, done.exit_code) == ("exited", 0)
        assert inv.log_path.read_text() == "done\n"
    finally:
        executor.close()


@pytest.mark.parametrize(
    ("asked", "named"),
    [(Resources(gpus=1), "GPU=1"), (Resources(cpus=1, memory_mb=4096), "MEMORY=4096 MiB")],
)
def test_a_step_no_worker_can_run_fails_with_the_reason(
    resource_cluster: str, tmp_path: Path, asked: Resources, named: str
) -> None:
    inv = _invocation(tmp_path / "work", "huge", "echo never", resources=asked)
    fits = _invocation(tmp_path / "work", "fits", "echo fits", resources=Resources(cpus=1))
    settings = {"scheduler": resource_cluster, "no_capacity_timeout": 2}
    executor = DaskExecutor(settings)
    try:
        handle, other = executor.submit(inv), executor.submit(fits)
        done = {c.key: c for c in _all_done(executor, [handle, other])}
        refused = done[handle.key]
        assert refused.state == "error" and refused.message is not None
        assert refused.message.startswith("no Dask worker can run the step: it asks for ")
        assert named in refused.message and "CPU=2, MEMORY=2048 MiB" in refused.message
        assert inv.log_path.read_text() == ""  # it never ran
        assert (done[other.key].state, done[other.key].exit_code) == ("exited", 0)
        assert executor.capacity().slots == 2  # the cluster itself is fine
    finally:
        executor.close()


def _all_done(executor: DaskExecutor, handles: list[Handle]) -> list[Completion]:
    found: list[Completion] = []
    deadline = time.monotonic() + PATIENCE
    while len(found) < len(handles):
        assert time.monotonic() < deadline, f"only {found} ended"
        left = [h for h in handles if h.key not in {c.key for c in found}]
        found += executor.poll(left, 0.5)
    return found
