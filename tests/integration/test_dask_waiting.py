"""Waiting and losing workers on Dask, on a private cluster (a scheduler and one worker
of one thread on free ports) that the test may break: needs only the dask package."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import ports
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration
START = 60.0  # seconds: generous for a loaded machine; never a speed assertion


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]


def _free_port() -> int:
    return ports.free_port()


def _daemon(role: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"distributed.cli.dask_{role}", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _threads(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=5, set_as_default=False) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        return sum(int(w["nthreads"]) for w in workers)


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Cluster]:
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
        "worker", logs / "worker.log", address, "--host", "127.0.0.1", "--nthreads", "1",
        "--no-nanny", "--no-dashboard", "--local-directory", str(logs / "work"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START
        while True:
            assert scheduler.poll() is None and worker.poll() is None, (
                logs / "scheduler.log"
            ).read_text()
            assert time.monotonic() < deadline, "the private Dask cluster did not start"
            try:
                if _threads(address) >= 1:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield Cluster(address, scheduler, worker)
    finally:
        for process in (worker, scheduler):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_lost_worker_ends_its_step_and_queued_steps_fail_without_capacity(
    repo: Repo, private_cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    repo.write(
        ".conveyor/config.toml",
        f'[executors.dask]\nscheduler = "{private_cluster.address}"\nno_capacity_timeout = 5\n',
    )
    step = f'echo $$ > "{marks}/$CONVEYOR_STEP_ID"; sleep 240'
    repo.pipeline(
        f"""\
        jobs:
          one:
            steps: [{{run: '{step}', cache: false}}]
          two:
            steps: [{{run: '{step}', cache: false}}]
          three:
            steps: [{{run: '{step}', cache: false}}]
        """
    )
    repo.commit("pipeline")
    run = repo.popen("run", "--executor", "dask", "-j", "3")
    try:
        deadline = time.monotonic() + START
        while not any(path.stat().st_size for path in marks.iterdir()):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no step started on the private cluster"
            time.sleep(0.2)
        started = {path.name: int(path.read_text()) for path in marks.iterdir()}
        private_cluster.worker.send_signal(signal.SIGKILL)  # a crash: no goodbye
        out, err = run.communicate(timeout=240)  # the run ends: nothing hangs
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=30)  # closes its pipes, whatever happened above
    assert run.returncode == 1, out + err
    steps = repo.steps()
    assert len(started) == 1, started
    (running_id,) = started
    running = steps[running_id]
    assert running["status"] == "failed"
    assert "left the cluster" in (running["error"] or ""), running["error"]
    waiting = {s for s in steps if s != running_id}
    assert len(waiting) == 2, steps
    for step_id in waiting:
        error = steps[step_id]["error"] or ""
        assert steps[step_id]["status"] == "failed"
        assert "the dask executor has had no capacity for 5s" in error, error
        assert "no Dask worker is connected to the scheduler" in error
    # the step's watcher stopped its process group when the worker died
    deadline = time.monotonic() + START
    while _alive(started[running_id]):
        assert time.monotonic() < deadline, "the lost step's process outlived its worker"
        time.sleep(0.2)


def test_a_scheduler_that_goes_away_ends_the_run_with_its_reason(
    repo: Repo, private_cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    repo.write(
        ".conveyor/config.toml",
        f'[executors.dask]\nscheduler = "{private_cluster.address}"\nconnect_timeout = 3\n',
    )
    step = f'echo $$ > "{marks}/$CONVEYOR_STEP_ID"; sleep 240'
    repo.pipeline(
        f"""\
        jobs:
          one:
            steps: [{{run: '{step}', cache: false}}]
          two:
            steps: [{{run: '{step}', cache: false}}]
        """
    )
    repo.commit("pipeline")
    run = repo.popen("run", "--executor", "dask", "-j", "2")
    try:
        deadline = time.monotonic() + START
        while not any(path.stat().st_size for path in marks.iterdir()):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no step started on the private cluster"
            time.sleep(0.2)
        private_cluster.scheduler.send_signal(signal.SIGKILL)
        out, err = run.communicate(timeout=200)  # the run ends: nothing hangs
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, out + err
    assert "Traceback" not in err
    shown = repo.show()
    assert shown["status"] == "failed"
    for step in shown["steps"]:
        assert step["status"] == "failed", step
        # the scheduler's loss, or (a race seen 1 time in 4) its workers' loss heard first
        error = step["error"] or ""
        assert "Dask scheduler" in error or "left the cluster" in error, error
