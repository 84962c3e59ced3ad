"""The Dask executor through the CLI, against the real cluster of scripts/engines/dask.sh.

Needs ``eval "$(scripts/engines/dask.sh env)"`` (CONVEYOR_DASK_SCHEDULER); skipped without
it, failed without it when scripts/test.sh started the engine (dask in CONVEYOR_ENGINES).
The unreachable-scheduler test needs only the dask package.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
jobs:
  prepare:
    steps:
      - run: mkdir -p data && seq 1 10 > data/numbers.txt
        outputs: [data/numbers.txt]
  square:
    matrix:
      n: [1, 2, 3]
    steps:
      - run: >-
          mkdir -p out/sq-${{ matrix.n }}/deep &&
          awk -v n=${{ matrix.n }} '{ print $1 * n }' data/numbers.txt > out/sq-${{ matrix.n }}/values.txt &&
          echo "$MATRIX_N" > out/sq-${{ matrix.n }}/deep/n.txt && echo squared $MATRIX_N
        inputs: [data/numbers.txt]
        outputs: ["out/sq-${{ matrix.n }}"]
  total:
    needs: [square]
    steps:
      - run: mkdir -p results && cat out/sq-*/values.txt | awk '{ s += $1 } END { print s }' > results/total.txt
        inputs: [out]
        outputs: [results/total.txt]
"""


@pytest.fixture
def scheduler() -> str:
    found = os.environ.get("CONVEYOR_DASK_SCHEDULER")
    if not found:
        engine_missing(
            "dask", "dask engine not configured; start it with scripts/engines/dask.sh up"
        )
    return str(found)


def _configure(repo: Repo, scheduler: str) -> None:
    repo.write(".conveyor/config.toml", f'[executors.dask]\nscheduler = "{scheduler}"\n')


def _digests(repo: Repo) -> dict[str, str]:
    return {o["path"]: o["digest"] for s in repo.steps().values() for o in s["outputs"]}


def test_matrix_pipeline_matches_local_and_shares_its_cache(repo: Repo, scheduler: str) -> None:
    _configure(repo, scheduler)
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    local = repo.run("run", "--executor", "local")
    assert local.code == 0, local.out + local.err
    expected = _digests(repo)
    assert len(expected) == 5
    assert (repo.path / "results" / "total.txt").read_text().strip() == "330"

    for rel in ("data", "out", "results"):
        for path in sorted((repo.path / rel).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    cached = repo.run("run", "--executor", "dask")
    assert cached.code == 0, cached.out + cached.err
    assert all(s["cached"] for s in repo.steps().values())
    assert (repo.path / "out" / "sq-3" / "deep" / "n.txt").read_text() == "3\n"

    forced = repo.run("run", "--executor", "dask", "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    steps = repo.steps()
    assert not any(s["cached"] for s in steps.values())
    assert repo.show()["executor"] == "dask"
    assert _digests(repo) == expected
    log = Path(steps["square[n=2].step-1"]["log"]).read_text()
    assert "squared 2" in log


def test_a_timed_out_step_is_stopped_and_keeps_its_log(repo: Repo, scheduler: str) -> None:
    """The runner cancels it at its timeout: the task stops the step (TERM) and still
    returns what it wrote."""
    _configure(repo, scheduler)
    repo.pipeline(
        """\
jobs:
  slow:
    steps:
      - run: echo before && sleep 120 && echo after
        timeout: 3s
"""
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "dask", timeout=120)
    assert result.code == 1, result.out + result.err
    steps = repo.steps()
    slow = steps["slow.step-1"]
    assert slow["status"] == "failed" and "timed out" in (slow["error"] or "")
    log = Path(slow["log"]).read_text()
    assert "before" in log and "after" not in log


def test_an_unreachable_scheduler_fails_the_run_with_one_message(repo: Repo) -> None:
    pytest.importorskip("distributed", reason="needs dask (pip install 'conveyor[dask]')")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    repo.write(
        ".conveyor/config.toml",
        f'[executors.dask]\nscheduler = "{closed}"\nconnect_timeout = 2\n',
    )
    repo.pipeline(
        "jobs:\n  many:\n    matrix:\n      n: [1, 2]\n    steps:\n      - run: echo hi\n"
    )
    repo.commit("pipeline")
    started = time.monotonic()
    result = repo.run("run", "--executor", "dask", timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    shown = repo.show()
    assert shown["status"] == "failed" and "cannot reach the Dask scheduler" in shown["error"]


def test_big_inputs_travel_scattered_and_come_back_whole(repo: Repo, scheduler: str) -> None:
    """Above 1 MiB the inputs are scattered to a worker rather than put in the task."""
    _configure(repo, scheduler)
    repo.write("data/big.bin", "0123456789abcdef" * 200_000)  # 3.2 MB
    repo.pipeline(
        """\
jobs:
  copy:
    steps:
      - run: mkdir -p out && cp data/big.bin out/big.bin && wc -c < data/big.bin
        inputs: [data/big.bin]
        outputs: [out/big.bin]
"""
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "dask", timeout=120)
    assert result.code == 0, result.out + result.err
    copied = (repo.path / "out" / "big.bin").read_bytes()
    assert copied == (repo.path / "data" / "big.bin").read_bytes()
    assert "3200000" in Path(repo.steps()["copy.step-1"]["log"]).read_text()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_next_command_ends_a_step_a_killed_run_left_on_the_cluster(
    repo: Repo, scheduler: str, tmp_path: Path
) -> None:
    """Dask tasks are fire-and-forget: the step goes on when ``conveyor`` is killed, and
    the next command's recovery stops it on the worker through its recorded key."""
    _configure(repo, scheduler)
    mark = tmp_path / "pid"
    repo.pipeline(f"jobs:\n  slow:\n    steps:\n      - run: echo $$ > {mark}; sleep 240\n")
    repo.commit("pipeline")
    run = repo.popen("run", "--executor", "dask")
    try:
        deadline = time.monotonic() + 90
        while not (mark.exists() and mark.read_text().strip()):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.2)
        time.sleep(0.5)  # the run records the step's start (its handle) right after it submits
        run.send_signal(signal.SIGKILL)
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=30)  # closes its pipes
    step = int(mark.read_text())
    assert _alive(step), "the step should outlive the killed run (fire-and-forget)"
    shown = repo.show()  # any command of the project recovers the interrupted run
    assert shown["status"] != "running"
    deadline = time.monotonic() + 90
    while _alive(step):
        assert time.monotonic() < deadline, "the recovered step is still running"
        time.sleep(0.2)
