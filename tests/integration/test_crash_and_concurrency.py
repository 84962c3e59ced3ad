"""Crash safety (SIGKILL mid-run), clean cancellation, and two runs at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


CHAIN = """\
jobs:
  chain:
    steps:
      - id: one
        run: echo one > one.txt
        outputs: [one.txt]
      - id: two
        run: echo two > two.txt
        outputs: [two.txt]
      - id: slow
        run: echo $$ > slow.pid; touch slow.started; sleep 60; echo done > slow.txt
        outputs: [slow.txt]
      - id: last
        run: echo last > last.txt
        outputs: [last.txt]
"""


def _integrity_ok(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_step_status(db: Path, step_id: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT status FROM step_runs WHERE step_id = ?", (step_id,)
            ).fetchone()
        finally:
            conn.close()
        if row is not None and row[0] == status:
            return
        assert time.monotonic() < deadline, f"{step_id} not recorded {status} (is {row})"
        time.sleep(0.02)


def test_sigkill_mid_run_then_interrupted_and_resumed(repo: Repo) -> None:
    repo.pipeline(CHAIN)
    repo.commit()
    proc = repo.popen("run")
    _wait_for(repo.path / "slow.started")
    slow_pid = int((repo.path / "slow.pid").read_text())
    # completions are made durable while the runner waits (within its 100 ms flush
    # window), not one commit per step: kill once the finished steps are on disk
    _wait_for_step_status(repo.path / ".conveyor/conveyor.db", "chain.two", "succeeded")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()

    _integrity_ok(repo.path / ".conveyor/conveyor.db")
    # the next command notices the dead run and marks it
    runs = repo.run("runs", "--json").json()
    assert runs[0]["status"] == "interrupted"
    steps = repo.steps(runs[0]["id"])
    assert steps["chain.one"]["status"] == "succeeded"
    assert steps["chain.slow"]["status"] == "cancelled"
    # the orphaned step's process group was ended when the run was marked
    deadline = time.monotonic() + 5
    while _pid_alive(slow_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(slow_pid)
    # no half-written blob is visible; leftovers only ever live in tmp/
    for blob in (repo.path / ".conveyor/store/objects").rglob("*"):
        if blob.is_file():
            assert len(blob.parent.name + blob.name) == 64

    # resume: finished steps are cache hits, the rest runs (make slow quick now)
    repo.pipeline(CHAIN.replace("sleep 60", "sleep 0"))
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    steps = repo.steps()
    assert steps["chain.one"]["cached"] is True
    assert steps["chain.two"]["cached"] is True
    assert steps["chain.slow"]["cached"] is False
    assert steps["chain.last"]["status"] == "succeeded"


def test_ctrl_c_cancels_and_kills_the_process_group(repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          a:
            steps:
              - run: (sleep 120 & echo $! > child.pid; wait) ; echo never > never.txt
          b:
            steps:
              - run: touch b.started; sleep 120
        """
    )
    repo.commit()
    proc = repo.popen("run", "-j", "2")
    _wait_for(repo.path / "child.pid")
    _wait_for(repo.path / "b.started")
    child = int((repo.path / "child.pid").read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "cancelling" in err
    deadline = time.monotonic() + 5
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child), "the step's background child must be killed with its group"
    run = repo.show()
    assert run["status"] == "cancelled"
    assert {s["status"] for s in run["steps"]} == {"cancelled"}
    assert not (repo.path / "never.txt").exists()


def test_two_runs_at_once_both_succeed(repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          a:
            steps:
              - run: touch started; sleep 1; date +%s%N >> log.txt
                cache: false
        """
    )
    repo.commit()
    first = repo.popen("run")
    _wait_for(repo.path / "started")  # the first run holds the lock now
    second = repo.popen("run")
    out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    assert "waiting" in err2
    runs = repo.run("runs", "--json").json()
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert len((repo.path / "log.txt").read_text().split()) == 2


def test_no_wait_refuses_while_another_run_holds_the_project(repo: Repo) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: touch started; sleep 3\n")
    repo.commit()
    first = repo.popen("run")
    _wait_for(repo.path / "started")
    refused = repo.run("run", "--no-wait")
    first.communicate(timeout=60)
    assert refused.code == 1
    assert "another run is in progress" in refused.err


def test_store_write_is_atomic_under_sigkill(tmp_path: Path) -> None:
    """Kill a process while it stores a large file: no partial blob under objects/."""
    script = (
        "import sys; from pathlib import Path; from conveyor.store import ContentStore;"
        "s = ContentStore(Path(sys.argv[1])); s.put_file(Path(sys.argv[2]))"
    )
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for i in range(64):
            handle.write(bytes([i]) * (1 << 20))
    root = tmp_path / "store"
    for delay in (0.05, 0.15, 0.3):
        proc = subprocess.Popen(["python3", "-c", script, str(root), str(big)])
        time.sleep(delay)
        proc.kill()
        proc.wait()
        blobs = (
            [p for p in (root / "objects").rglob("*") if p.is_file()]
            if (root / "objects").exists()
            else []
        )
        for blob in blobs:
            assert blob.stat().st_size == big.stat().st_size


def _rewriting_chain(n: int) -> str:
    """Step i writes c/i.txt, then rewrites its input c/(i-1).txt (the attack on a
    store that would read an output after the next step started); a slow last step."""
    lines = ["jobs:", "  chain:", "    steps:"]
    for i in range(1, n + 1):
        lines += [
            f"      - id: s{i}",
            f"        run: echo s{i} > c/{i}.txt; echo rewritten > c/{i - 1}.txt",
            f"        inputs: [c/{i - 1}.txt]",
            f"        outputs: [c/{i}.txt]",
        ]
    lines += [
        "      - id: slow",
        f"        run: touch slow.started; sleep 60; cat c/{n}.txt > slow.txt",
        f"        inputs: [c/{n}.txt]",
        "        outputs: [slow.txt]",
    ]
    return "\n".join(lines) + "\n"


def test_sigkill_leaves_every_recorded_output_stored_as_its_step_wrote_it(repo: Repo) -> None:
    """Blobs of small outputs are written while the next steps start: a kill at any
    moment leaves no record naming a blob that is missing, and every blob holds the
    bytes its step wrote, not the rewrite that followed."""
    n = 20
    repo.pipeline(_rewriting_chain(n))
    repo.write("c/0.txt", "s0\n")
    repo.commit()
    proc = repo.popen("run")
    _wait_for(repo.path / "slow.started")
    _wait_for_step_status(repo.path / ".conveyor/conveyor.db", f"chain.s{n}", "succeeded")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()

    conn = sqlite3.connect(repo.path / ".conveyor/conveyor.db")
    try:
        rows = conn.execute("SELECT step_id, outputs FROM step_runs WHERE status = 'succeeded'")
        recorded = {step: json.loads(outputs) for step, outputs in rows}
        entries = [json.loads(o) for (o,) in conn.execute("SELECT outputs FROM cache_entries")]
    finally:
        conn.close()
    assert len(recorded) == n
    objects = repo.path / ".conveyor/store/objects"
    for step, outputs in recorded.items():
        (output,) = outputs
        blob = objects / output["digest"][:2] / output["digest"][2:]
        assert blob.read_text() == f"{step.removeprefix('chain.')}\n"
    for outputs in entries:
        assert all((objects / o["digest"][:2] / o["digest"][2:]).is_file() for o in outputs)
    assert (repo.path / "c/1.txt").read_text() == "rewritten\n"  # the attack happened
