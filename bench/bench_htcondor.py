"""100 trivial steps through the HTCondor executor vs the same 100 jobs submitted plainly.

Needs the test pool and root (for ``htcondor.sh run``)::

    scripts/engines/htcondor.sh up && eval "$(scripts/engines/htcondor.sh env)"
    python bench/bench_htcondor.py [--steps 100] [--reps 3]

Conveyor: ``conveyor run --executor htcondor --force`` on a generated pipeline of N
independent steps, each writing one declared output (spool mode, files moved through
the schedd, outputs stored). Reference: ``condor_submit`` of one cluster of N jobs that
each write one file, then ``condor_wait`` on its log, run as the submit user from a
directory under /tmp that the pool shares. Best of ``--reps``, alternating; the target
is a ratio of at most 1.2. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTCONDOR_SH = ROOT / "scripts" / "engines" / "htcondor.sh"
CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]
TARGET = 1.2


def make_project(path: Path, steps: int) -> None:
    path.mkdir()
    lines = ["name: bench-htcondor", "jobs:"]
    for i in range(steps):
        lines += [
            f"  s{i}:",
            "    steps:",
            f"      - run: mkdir -p out && echo {i} > out/s{i}.txt",
            f"        outputs: [out/s{i}.txt]",
        ]
    (path / "conveyor.yml").write_text("\n".join(lines) + "\n")
    (path / ".gitignore").write_text("out/\n")
    git = ["git", "-c", "user.email=bench@example.invalid", "-c", "user.name=Bench"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "pipeline"]):
        subprocess.run([*git, *args], cwd=path, check=True)


def time_conveyor(project: Path, log: Path) -> float:
    with open(log, "ab") as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [*CONVEYOR, "run", "--executor", "htcondor", "--force"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"conveyor run failed ({proc.returncode}); see {log}")
    return elapsed


SUBMIT = """\
executable = /bin/sh
arguments = "-c 'mkdir -p out && echo $(Process) > out/s$(Process).txt'"
transfer_executable = False
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_output_files = out
output = logs/$(Process).out
error = logs/$(Process).err
log = job.log
queue {steps}
"""


def time_plain(base: Path, steps: int, rep: int) -> float:
    work = base / f"plain{rep}"
    (work / "logs").mkdir(parents=True)
    (work / "job.sub").write_text(SUBMIT.format(steps=steps))
    user = os.environ.get("CONVEYOR_HTCONDOR_USER", "conveyor")
    shutil.chown(work, user, user)
    shutil.chown(work / "logs", user, user)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            str(HTCONDOR_SH),
            "run",
            "sh",
            "-c",
            "condor_submit job.sub >/dev/null && condor_wait job.log",
        ],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"condor_submit/condor_wait failed: {proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("CONDOR_CONFIG"):
        print('start the pool first: eval "$(scripts/engines/htcondor.sh env)"', file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="conveyor-bench-htcondor-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        project = base / "project"
        make_project(project, args.steps)
        log = base / "conveyor.log"
        conveyor, plain = [], []
        for rep in range(args.reps):
            plain.append(time_plain(base, args.steps, rep))
            conveyor.append(time_conveyor(project, log))
            print(
                f"rep {rep + 1}: plain {plain[-1]:.2f}s  conveyor {conveyor[-1]:.2f}s", flush=True
            )
        best_c, best_p = min(conveyor), min(plain)
        ratio = best_c / best_p
        verdict = "ok" if ratio <= TARGET else "over target"
        print(f"{args.steps} steps, best of {args.reps}:")
        print(f"  condor_submit + condor_wait   {best_p:6.2f}s")
        print(f"  conveyor run --executor htcondor --force  {best_c:6.2f}s")
        print(f"  ratio {ratio:.2f} (target <= {TARGET}) {verdict}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
