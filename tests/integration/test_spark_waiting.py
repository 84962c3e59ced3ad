"""Spark steps that wait: the timeout counts from the task's start (not the context's),
and steps queued on a cluster whose only worker stopped fail with that reason.

The second test starts its own Spark master and worker on free ports and stops only
that worker (the shared cluster of scripts/engines/spark.sh is never touched)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import ports
from tests.engines import engine_missing
from tests.integration.conftest import Repo
from tests.integration.test_spark import _configure

pytestmark = pytest.mark.integration
START = 180.0  # seconds a private master and worker may take on a busy machine


def _spark_home() -> Path:
    home = os.environ.get("SPARK_HOME")
    if not home or not Path(home, "bin", "spark-class").exists():
        engine_missing("spark", 'SPARK_HOME unset; eval "$(scripts/engines/spark.sh env)"')
    return Path(str(home))


def _free_port() -> int:
    return ports.free_port()


@dataclass
class Cluster:
    url: str
    master: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]


def _daemon(home: Path, logs: Path, role: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_CONF_DIR": str(logs)}
    env["SPARK_MASTER_OPTS"] = "-Dspark.master.rest.enabled=false"
    command = [str(home / "bin" / "spark-class"), f"org.apache.spark.deploy.{role.lower()}.{role}"]
    with open(logs / f"{role.lower()}.log", "ab") as log:
        return subprocess.Popen(
            [*command, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the executors it starts end with it
        )


def _alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json", timeout=2) as answer:
            return int(json.load(answer).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Cluster]:
    home = _spark_home()
    logs = tmp_path / "spark"
    logs.mkdir()
    port, webui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    master = _daemon(
        home, logs, "Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui)
    )
    worker = _daemon(
        home,
        logs,
        "Worker",
        "--host",
        "127.0.0.1",
        "--cores",
        "1",
        "--memory",
        "1g",
        "--webui-port",
        str(_free_port()),
        "--work-dir",
        str(logs / "work"),
        url,
    )
    try:
        deadline = time.monotonic() + START
        while _alive_workers(webui) < 1:
            assert master.poll() is None and worker.poll() is None, (
                logs / "master.log"
            ).read_text()
            assert time.monotonic() < deadline, "the private Spark cluster did not come up"
            time.sleep(0.5)
        yield Cluster(url, master, worker)
    finally:
        for process in (worker, master):  # only what this fixture started, by its group
            with contextlib.suppress(ProcessLookupError):  # executors outlive their worker
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def test_the_timeout_does_not_count_sparks_start(repo: Repo) -> None:
    """The issue's case: the context's start (several seconds) is not the step's time."""
    master = os.environ.get("CONVEYOR_SPARK_MASTER")
    if not master:
        engine_missing("spark", "spark engine not configured (CONVEYOR_SPARK_MASTER)")
    _configure(repo, str(master))
    repo.pipeline(
        """\
        jobs:
          quick:
            steps:
              - run: sleep 1 && echo slept
                timeout: 5s
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "spark", timeout=300)
    assert result.code == 0, result.out + result.err
    step = repo.steps()["quick.step-1"]
    assert step["status"] == "succeeded", step.get("error")


def test_queued_steps_fail_when_the_only_worker_stops(
    repo: Repo, private_cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    # 10 s without capacity, counted from the executor's loss (a loaded machine's slow
    # registration of the first executor is the start grace's, not this limit's)
    repo.write(
        ".conveyor/config.toml",
        f'[executors.spark]\nmaster = "{private_cluster.url}"\nno_capacity_timeout = 10\n'
        "start_timeout = 180\n",  # a loaded machine: the context start is not under test
    )
    step = f'touch "{marks}/$CONVEYOR_STEP_ID"; sleep 240'
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
    run = repo.popen("run", "--executor", "spark", "-j", "3")
    try:
        deadline = time.monotonic() + START
        while not any(marks.iterdir()):  # one step runs on the worker's only core
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no step started on the private cluster"
            time.sleep(0.2)
        started = {path.name for path in marks.iterdir()}
        # its machine goes away: the worker, its executor and the task's Python worker at
        # once (a SIGTERM lets the master start a new executor on the stopping worker, and
        # Spark may leave that one running: a step would rightly start there)
        os.killpg(private_cluster.worker.pid, signal.SIGKILL)
        out, err = run.communicate(timeout=240)  # the run ends: nothing hangs
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=30)  # closes its pipes, whatever happened above
    assert run.returncode == 1, out + err
    steps = repo.steps()
    waiting = {s for s in steps if s not in started}
    assert len(waiting) == 2, (started, steps)
    for step_id in waiting:
        error = steps[step_id]["error"] or ""
        assert steps[step_id]["status"] == "failed"
        assert "the spark executor has had no capacity for 10s" in error, error
        assert "no Spark executor is registered with the driver" in error
