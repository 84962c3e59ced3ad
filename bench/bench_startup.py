"""Start-up of the CLI: a no-op ``conveyor run`` and the read-only commands against a bare
``python3 -c pass``.

python bench/bench_startup.py              # medians and best of 9, interleaved
python bench/bench_startup.py --reps 15 --json startup.json
python bench/bench_startup.py --before /tmp/old/src   # also an older checkout's src/, interleaved

Builds two W1 chains (5 and 200 steps, ``bench/workloads.py``) in a temporary directory,
runs each once from scratch (so the database exists and every step is cached), warms the
bytecode cache, then times every command ``--reps`` times, interleaved (one round runs each
command once), and prints medians and bests with their ratio to ``python3 -c pass``'s.
Output goes to a pipe, as in a script, so the CLI prints plain lines. With ``--before``,
every command also runs with that ``src/`` directory first on ``PYTHONPATH`` (e.g. ``git
archive`` of an older commit), in the same rounds, so both columns see the same load.
Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workloads import make_chain

TARGET = 8.0


def _conveyor() -> list[str]:
    found = shutil.which("conveyor")
    return [found] if found else [sys.executable, "-m", "conveyor.cli.main"]


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one command, in seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd} ({proc.returncode})")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the medians and bests (seconds) here")
    parser.add_argument("--before", type=Path, help="an older src/ directory to compare with")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="conveyor-startup-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # users have .pyc files
    variants = {"after": env}
    if args.before:
        before = dict(env, PYTHONPATH=str(args.before.resolve()))
        variants = {"before": before, "after": env}
    conveyor = _conveyor()
    try:
        small = make_chain(root / "c5", 5, ("conveyor",), None).tool_dir("conveyor")
        big = make_chain(root / "c200", 200, ("conveyor",), None).tool_dir("conveyor")
        for project in (small, big):
            subprocess.run(
                [*conveyor, "run"], cwd=project, env=env, check=True, capture_output=True
            )
        shown = subprocess.run(
            [*conveyor, "show", "latest", "--json"],
            cwd=big,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        first_run = json.loads(shown.stdout)["id"]
        commands: dict[str, tuple[list[str], Path]] = {
            "python3 -c pass": (["python3", "-c", "pass"], big),
            "no-op run, 5 steps": ([*conveyor, "run"], small),
            "no-op run, 200 steps": ([*conveyor, "run"], big),
            "runs": ([*conveyor, "runs"], big),
            "show latest": ([*conveyor, "show", "latest"], big),
            "why chain.s200": ([*conveyor, "why", "chain.s200"], big),
            "lineage c/200.txt": ([*conveyor, "lineage", "c/200.txt"], big),
            "plan": ([*conveyor, "plan"], big),
            "logs RUN chain.s1": ([*conveyor, "logs", first_run, "chain.s1"], big),
        }
        for variant in variants.values():  # compile bytecode, warm the page cache
            for argv, cwd in commands.values():
                _time(argv, cwd, variant)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {
            (name, v): [] for name in commands for v in variants
        }
        for _ in range(args.reps):
            for name, (argv, cwd) in commands.items():
                for key, variant in variants.items():
                    times[name, key].append(_time(argv, cwd, variant))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"{args.reps} rounds, interleaved; load average {load:.1f} on {os.cpu_count()} cores")
    found = {}
    for index, metric in enumerate(("wall", "CPU (user + system)")):
        for name, pick in (("median", statistics.median), ("best", min)):
            print(f"\n{metric}, {name} of {args.reps}")
            found[f"{metric}, {name}"] = _table(
                list(commands),
                list(variants),
                {k: [t[index] for t in v] for k, v in times.items()},
                pick,
            )
    if args.json:
        args.json.write_text(json.dumps({"load": load, **found}, indent=2) + "\n")
    return 0


def _table(
    commands: list[str],
    variants: list[str],
    times: dict[tuple[str, str], list[float]],
    pick: Callable[[list[float]], float],
) -> dict[str, float]:
    """Print one markdown table of ``pick`` (median or best) of each command's times and
    its ratio to ``python3 -c pass``'s; those figures by "command [variant]"."""
    picked = {key: pick(values) for key, values in times.items()}
    base = pick(
        [t for (name, _), values in times.items() if name == "python3 -c pass" for t in values]
    )
    print(
        "| command | "
        + " | ".join(f"{v} (x `python3 -c pass`)" for v in variants)
        + f" | target {TARGET:g}x |"
    )
    print("| --- " * (len(variants) + 2) + "|")
    for name in commands:
        if name == "python3 -c pass":
            print(f"| {name} | {base * 1000:.1f} ms |" + " |" * len(variants))
            continue
        cells = [
            f"{picked[name, v] * 1000:.0f} ms ({picked[name, v] / base:.1f}x)" for v in variants
        ]
        verdict = "met" if picked[name, "after"] / base <= TARGET else "missed"
        print(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    return {f"{name} [{v}]": value for (name, v), value in picked.items()}


if __name__ == "__main__":
    sys.exit(main())
