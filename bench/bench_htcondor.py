"""100 trivial steps through the HTCondor executor, in both of its modes, vs the same
100 jobs submitted plainly in the matching way.

Needs the test pool and root (for ``htcondor.sh run``)::

    scripts/engines/htcondor.sh up && eval "$(scripts/engines/htcondor.sh env)"
    python bench/bench_htcondor.py [--steps 100] [--reps 3]

Conveyor: ``conveyor run --executor htcondor --force`` on a generated pipeline of N
independent steps, each writing one declared output, outputs stored:

- ``spool`` mode (files moved through the schedd) against ``condor_submit -spool`` of
  one cluster of N jobs, waited for with ``condor_q`` every 0.5 s, then
  ``condor_transfer_data`` and ``condor_rm`` (what a client without a shared
  filesystem must do);
- ``shared`` mode (jobs run in the project directory, completions from the job event
  log) against ``condor_submit`` with ``should_transfer_files = NO`` and
  ``condor_wait`` on its log.

The plain jobs run as the submit user from a directory under /tmp that the pool shares;
so do the Conveyor projects (made writable for that user, who owns the jobs). The plain
transfer-without-spool submission of earlier reports is printed for reference. Best of
``--reps``, alternating; the target is a ratio of at most 1.2 per mode. Nothing here
asserts on time.
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


MODES = ("spool", "shared")


def make_project(path: Path, steps: int, mode: str) -> None:
    path.mkdir(mode=0o777)
    os.chmod(path, 0o777)  # the jobs' owner writes here in shared mode
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
    (path / ".conveyor").mkdir()
    (path / ".conveyor" / "config.toml").write_text(
        f'[executors.htcondor]\nfilesystem = "{mode}"\n'
    )
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


JOB = """\
executable = /bin/sh
arguments = "-c 'mkdir -p out && echo $(Process) > out/s$(Process).txt'"
transfer_executable = False
output = logs/$(Process).out
error = logs/$(Process).err
log = job.log
"""
PLAIN = {
    # plain transfer from a shared submit directory (the reference of earlier reports)
    "transfer": (
        "should_transfer_files = YES\nwhen_to_transfer_output = ON_EXIT\n"
        "transfer_output_files = out\n",
        "condor_submit job.sub >/dev/null && condor_wait job.log",
    ),
    "spool": (
        "should_transfer_files = YES\nwhen_to_transfer_output = ON_EXIT\n"
        "transfer_output_files = out\n",
        "c=$(condor_submit -spool -terse job.sub | cut -d. -f1) && "
        "while [ -n \"$(condor_q $c -constraint 'JobStatus != 4' -af ClusterId)\" ]; "
        "do sleep 0.5; done && condor_transfer_data $c >/dev/null && condor_rm $c >/dev/null",
    ),
    "shared": (
        "should_transfer_files = NO\n",
        "condor_submit job.sub >/dev/null && condor_wait job.log",
    ),
}


def time_plain(base: Path, steps: int, kind: str, rep: int) -> float:
    work = base / f"plain-{kind}{rep}"
    (work / "logs").mkdir(parents=True)
    extra, script = PLAIN[kind]
    (work / "job.sub").write_text(JOB + extra + f"queue {steps}\n")
    user = os.environ.get("CONVEYOR_HTCONDOR_USER", "conveyor")
    shutil.chown(work, user, user)
    shutil.chown(work / "logs", user, user)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(HTCONDOR_SH), "run", "sh", "-c", script],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"plain {kind} submission failed: {proc.stdout}{proc.stderr}")
    if len(list((work / "out").iterdir())) != steps:
        raise SystemExit(f"plain {kind} submission wrote no outputs in {work}")
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
        projects = {mode: base / f"project-{mode}" for mode in MODES}
        for mode, project in projects.items():
            make_project(project, args.steps, mode)
        log = base / "conveyor.log"
        conveyor: dict[str, list[float]] = {mode: [] for mode in MODES}
        plain: dict[str, list[float]] = {kind: [] for kind in PLAIN}
        for rep in range(args.reps):
            for kind in PLAIN:
                plain[kind].append(time_plain(base, args.steps, kind, rep))
            for mode in MODES:
                conveyor[mode].append(time_conveyor(projects[mode], log))
            times = [f"plain {k} {v[-1]:.2f}s" for k, v in plain.items()]
            times += [f"conveyor {m} {v[-1]:.2f}s" for m, v in conveyor.items()]
            print(f"rep {rep + 1}: " + "  ".join(times), flush=True)
        print(f"{args.steps} steps, best of {args.reps}:")
        print(f"  plain transfer, no spool (reference)  {min(plain['transfer']):6.2f}s")
        for mode in MODES:
            best_c, best_p = min(conveyor[mode]), min(plain[mode])
            ratio = best_c / best_p
            verdict = "ok" if ratio <= TARGET else "over target"
            print(
                f"  {mode:6}  plain {best_p:6.2f}s  conveyor {best_c:6.2f}s  "
                f"ratio {ratio:.2f} (target <= {TARGET}) {verdict}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
