"""Ctrl-C during an HTCondor run cannot crash it: a real ``conveyor run`` on the pool is
sent SIGINT twice, at moments drawn from a seeded generator, and must end as cancelled
(no segfault), with none of its jobs left in the queue and its scratch directory gone."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.test_htcondor import _need_pool, _queued

pytestmark = pytest.mark.integration
SEEDS = range(10)
EXIT_CANCELLED = 130


def _pipeline(repo: Repo, scratch: Path) -> None:
    repo.write(".conveyor/config.toml", f'[executors.htcondor]\nscratch = "{scratch}"\n')
    jobs = "\n".join(f"  s{i}:\n    steps: [{{run: 'sleep 120', cache: false}}]" for i in range(7))
    repo.pipeline(f"jobs:\n{jobs}\n")
    repo.commit("pipeline")


@pytest.mark.parametrize("seed", SEEDS)
def test_two_interrupts_at_random_moments_cancel_cleanly(
    repo: Repo, tmp_path: Path, seed: int
) -> None:
    _need_pool()
    scratch = tmp_path / "scratch"
    _pipeline(repo, scratch)
    chance = random.Random(seed)
    first, second = chance.uniform(0.0, 4.0), chance.uniform(0.0, 0.3)
    run = repo.popen("run", "--executor", "htcondor", "-j", "7")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(run.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("run ") for line in lines):  # its header: it began
            assert run.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.02)
        time.sleep(first)  # while jobs are submitted, uploaded, queued or running
        run.send_signal(signal.SIGINT)
        time.sleep(second)  # the crash: a second Ctrl-C 50 ms after the first
        run.send_signal(signal.SIGINT)
        run.wait(timeout=180)
        err = run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        reader.join(10)
        for stream in (run.stdout, run.stderr):
            if stream is not None:
                stream.close()
    out = "".join(lines)
    assert run.returncode == EXIT_CANCELLED, (first, second, run.returncode, out, err)
    assert "Traceback" not in err and "internal error" not in err, err
    runs = repo.run("runs", "--json")
    assert runs.code == 0, runs.err
    (listed,) = runs.json()
    assert listed["status"] == "cancelled", listed
    assert _queued(listed["id"]) == [], f"jobs of run {listed['id']} left in the queue"
    left = list(scratch.iterdir()) if scratch.exists() else []
    assert left == [], f"scratch left behind: {left}"
    assert not any(Path(repo.path).glob("core*")), "a core dump"
