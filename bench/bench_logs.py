"""`conveyor logs` of a big step log: wall time, time to first byte and peak memory.

    python bench/bench_logs.py [--mb 200] [--reps 3]

Runs a real pipeline in a temporary directory whose step prints ``--mb`` MB of lines
(plus a small step), then times, reading the command's stdout from a pipe:
``logs latest a.big``, ``logs latest`` (every step, each line prefixed),
``logs latest a.big --tail 10``; ``cat`` of the same log file is the reference, and
``logs`` of the small step's 5-byte log gives the start-up time every command pays.
Peak memory is the child's own maximum resident set (``os.wait4``). The Conveyor under
test is the one ``PYTHONPATH`` and this interpreter import (``bench/conveyor_entry.py``).
Nothing asserts on time; best of ``--reps`` for times, the largest peak for memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
LINE = "a line of log output from a step that prints a great deal, 0123456789"


def _git(repo: Path, *args: str) -> None:
    identity = ("-c", "user.name=conveyor-bench", "-c", "user.email=bench@localhost")
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def setup(repo: Path, megabytes: int) -> Path:
    """A project with one finished run; returns the path of the big step's log."""
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "conveyor.yml").write_text(
        "jobs:\n  a:\n    steps:\n"
        f"      - id: big\n        run: yes '{LINE}' | head -c {megabytes * 1_000_000}\n"
        "      - id: small\n        run: echo done\n"
    )
    (repo / ".gitignore").write_text(".conveyor/\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pipeline")
    subprocess.run(conveyor("run"), cwd=repo, check=True, capture_output=True)
    logs = list((repo / ".conveyor" / "logs").rglob("a.big.log"))
    assert len(logs) == 1, logs
    return logs[0]


def conveyor(*args: str) -> list[str]:
    return [sys.executable, str(BENCH / "conveyor_entry.py"), *args]


def measure(command: list[str], cwd: Path) -> tuple[float, float, int, int] | None:
    """Wall seconds, seconds to the first byte of stdout, peak RSS in KiB, bytes out;
    None when the command fails (an older Conveyor without ``--tail``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    first_at = time.perf_counter() - start
    size = len(first)
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        return None
    return wall, first_at, usage.ru_maxrss, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the big log in MB")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-logs-") as tmp:
        repo = Path(tmp) / "project"
        log = setup(repo, args.mb)
        cases = {
            "cat (reference)": ["cat", str(log)],
            "logs of a 5-byte log": conveyor("logs", "latest", "a.small"),  # start-up alone
            "logs RUN STEP": conveyor("logs", "latest", "a.big"),
            "logs RUN": conveyor("logs", "latest"),
            "logs RUN STEP --tail 10": conveyor("logs", "latest", "a.big", "--tail", "10"),
        }
        print(f"log of {log.stat().st_size / 1e6:.0f} MB; best of {args.reps}")
        print(
            f"{'command':26} {'wall s':>8} {'first byte ms':>14} {'max RSS MB':>11} {'MB out':>7}"
        )
        for name, command in cases.items():
            found = [measure(command, repo) for _ in range(args.reps)]
            runs = [r for r in found if r is not None]
            if len(runs) < len(found):
                print(f"{name:26} failed")
                continue
            wall = min(r[0] for r in runs)
            first = min(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            print(
                f"{name:26} {wall:8.3f} {first * 1000:14.1f} {rss / 1024:11.1f} "
                f"{runs[0][3] / 1e6:7.1f}"
            )


if __name__ == "__main__":
    main()
