"""The Spark executor through the CLI, against the real cluster of scripts/engines/spark.sh.

Needs ``eval "$(scripts/engines/spark.sh env)"`` (CONVEYOR_SPARK_MASTER); skipped without
it, failed without it when scripts/test.sh started the engine (spark in CONVEYOR_ENGINES).
The unreachable-master test needs only pyspark. The kill tests kill one Python
worker or one executor JVM of this test's own application; the standalone worker starts
a new executor by itself, so the cluster stays usable.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.registry import load_executor
from tests.engines import engine_missing
from tests.integration.conftest import Repo
from tests.integration.ui_support import serve_ui

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
def master() -> str:
    found = os.environ.get("CONVEYOR_SPARK_MASTER")
    if not found:
        message = "spark engine not configured; start it with scripts/engines/spark.sh up"
        engine_missing("spark", message)
    return found


def _configure(repo: Repo, master: str) -> None:
    repo.write(".conveyor/config.toml", f'[executors.spark]\nmaster = "{master}"\n')


def _digests(repo: Repo) -> dict[str, str]:
    return {o["path"]: o["digest"] for s in repo.steps().values() for o in s["outputs"]}


def _wait_for(path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _executor_jvm(python_worker: int) -> int:
    """The executor JVM above a Python worker (worker <- pyspark daemon <- java)."""
    pid = python_worker
    while pid > 1:
        pid = _parent(pid)
        if "CoarseGrainedExecutorBackend" in Path(f"/proc/{pid}/cmdline").read_text():
            return pid
    raise AssertionError(f"no executor JVM above process {python_worker}")


def test_matrix_pipeline_matches_local_and_shares_its_cache(repo: Repo, master: str) -> None:
    _configure(repo, master)
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
    cached = repo.run("run", "--executor", "spark")
    assert cached.code == 0, cached.out + cached.err
    assert all(s["cached"] for s in repo.steps().values())
    assert (repo.path / "out" / "sq-3" / "deep" / "n.txt").read_text() == "3\n"

    forced = repo.run("run", "--executor", "spark", "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    steps = repo.steps()
    assert not any(s["cached"] for s in steps.values())
    assert repo.show()["executor"] == "spark"
    assert _digests(repo) == expected
    log = Path(steps["square[n=2].step-1"]["log"]).read_text()
    assert "squared 2" in log


def test_unreachable_master_is_one_clear_error_quickly(repo: Repo, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="needs pyspark (pip install 'conveyor[spark]')")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"spark://127.0.0.1:{probe.getsockname()[1]}"
    executor = load_executor("spark", {"master": closed})
    invocation = Invocation("r/s/1", "true", {}, tmp_path, tmp_path / "logs" / "s.log")
    handle = executor.submit(invocation)  # records it; Spark starts on the first poll
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="cannot reach the Spark master"):
        executor.poll([handle], 0.1)
    assert time.monotonic() - started < 30
    executor.close()

    _configure(repo, closed)
    repo.pipeline(
        "jobs:\n  many:\n    matrix:\n      n: [1, 2, 3]\n    steps:\n      - run: echo hi\n"
    )
    repo.commit("pipeline")
    started = time.monotonic()
    result = repo.run("run", "--executor", "spark", timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 1, result.out + result.err  # a failed run, not bad input
    assert "Traceback" not in result.err and "conveyor: error:" not in result.err
    # Spark starts at the first poll: the run is finalised with the master's error
    summary = [line for line in result.out.splitlines() if line.startswith("run ")][-1]
    assert " FAILED in " in summary and "cannot reach the Spark master" in summary
    shown = repo.show()
    assert shown["status"] == "failed" and "cannot reach the Spark master" in shown["error"]
    assert all("cannot reach the Spark master" in s["error"] for s in shown["steps"])


def _sleeper(repo: Repo, marks: Path, retries: int) -> None:
    """A step that records its Python worker ($PPID) and itself ($$), then sleeps on its
    first attempt; a later attempt finishes at once."""
    repo.pipeline(
        f"""\
        jobs:
          slow:
            steps:
              - run: >-
                  echo $$ > {marks}/step-$CONVEYOR_ATTEMPT &&
                  echo $PPID > {marks}/worker-$CONVEYOR_ATTEMPT &&
                  if [ "$CONVEYOR_ATTEMPT" = 1 ]; then sleep 120; fi &&
                  echo done > done.txt
                outputs: [done.txt]
                retries: {retries}
        """
    )
    repo.commit("sleeper")


def test_killed_python_worker_fails_the_step_clearly(
    repo: Repo, master: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    _configure(repo, master)
    _sleeper(repo, marks, retries=0)
    proc = repo.popen("run", "--executor", "spark")
    try:
        _wait_for(marks / "worker-1")
        step = int((marks / "step-1").read_text())
        os.kill(int((marks / "worker-1").read_text()), signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "ended before the step did" in out + err
    record = repo.steps()["slow.step-1"]
    assert record["status"] == "failed"
    assert "executor or Python worker was killed" in record["error"]
    assert repo.show()["status"] == "failed"
    time.sleep(0.5)
    assert not _alive(step), "the step's process outlived its task"


def test_killed_executor_is_retried_by_the_runner(repo: Repo, master: str, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    _configure(repo, master)
    _sleeper(repo, marks, retries=1)
    proc = repo.popen("run", "--executor", "spark")
    try:
        _wait_for(marks / "worker-1")
        step = int((marks / "step-1").read_text())
        os.kill(_executor_jvm(int((marks / "worker-1").read_text())), signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    record = repo.steps()["slow.step-1"]
    assert record["status"] == "succeeded"
    assert record["attempts"] == 2
    assert (repo.path / "done.txt").read_text() == "done\n"
    assert "attempt 2" in Path(record["log"]).read_text()
    assert not _alive(step), "the step's process outlived its executor"


def test_step_page_names_the_spark_task_that_ran_it(repo: Repo, master: str) -> None:
    """The step page says which Spark task ran the step (stage, partition, attempt), on
    which executor and host: what the task learnt of itself from its TaskContext."""
    _configure(repo, master)
    repo.pipeline("jobs:\n  hello:\n    steps:\n      - id: say\n        run: echo hi\n")
    repo.commit("one step")
    result = repo.run("run", "--executor", "spark", timeout=300)
    assert result.code == 0, result.out + result.err
    run = repo.show()["id"]
    with serve_ui(repo.path) as url:
        page = httpx.get(f"{url}/runs/{run}/steps/hello.say", timeout=30)
    assert page.status_code == 200, page.text
    where = re.search(r"<dt>Ran on</dt><dd><code class=\"wrap\">([^<]+)</code>", page.text)
    assert where is not None, page.text
    assert re.fullmatch(
        r"spark \(conveyor-[0-9a-f]+/1\): task \d+, stage \d+, partition 0, "
        r"attempt 0, executor \d+, host " + re.escape(socket.gethostname()),
        where.group(1),
    ), where.group(1)
