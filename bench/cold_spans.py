"""Where a cold run's time goes, span by span: CPU of the runner's thread and wall time.

    python bench/cold_spans.py [--n 1] [--reps 3] [--only W1,W2] [--src DIR]

Builds W1 (chain, -j1) and W2 (fan-out + join, -j2) for Conveyor alone, then runs
``conveyor run`` from scratch ``--reps`` times each in a fresh interpreter that wraps the
runner's per-step methods, the executor's ``submit``/``poll`` and a few start-up calls
with timers. Each span gets its calls, the thread CPU it used (``time.thread_time``: what
the loop itself spent, much steadier than wall time on a shared machine) and its wall
time; spans nest (``Runner._launch`` includes the submit it leads to). Medians over the
repetitions are printed. ``--src`` measures another checkout's ``src`` (a before figure).
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
from collections import defaultdict
from pathlib import Path
from typing import Any

import workloads as wl

SPANS = {  # module: class (or "" for a function of the module), attribute
    "conveyor.sdk.running": [("", "start_run"), ("", "compile_cached"), ("", "git_state")],
    "conveyor.execute.runner": [
        ("Runner", name)
        for name in ("execute", "_launch", "_submit", "_complete", "_stored", "_flush", "_turn")
    ],
    "conveyor.execute.launch": [("Launcher", "key"), ("Launcher", "invocation")],
    "conveyor.execute.workspace": [("Workspace", "store_outputs")],
    "conveyor.executors.local": [("LocalExecutor", "submit"), ("LocalExecutor", "poll")],
    "conveyor.metadata.lite.repository": [("LiteRepository", "write")],
    "conveyor.cli.progress": [("PlainReporter", "_print")],
}


def inside(argv: list[str], out: str) -> None:
    """In the child: wrap the spans, run the CLI, write the totals as JSON at exit."""
    import atexit
    import importlib

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    cpu0, wall0 = time.thread_time(), time.perf_counter()

    def wrap(owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                entry = totals[label]
                entry[0] += 1
                entry[1] += time.thread_time() - cpu
                entry[2] += time.perf_counter() - wall

        setattr(owner, name, timed)

    from conveyor.cli.main import main

    modules = {name: importlib.import_module(name) for name in SPANS}
    # the CLI's and the runner's modules; the compiler's are imported in compile_cached
    totals["imports"] = [1, time.thread_time() - cpu0, time.perf_counter() - wall0]
    for module_name, spans in SPANS.items():
        for owner_name, name in spans:
            module = modules[module_name]
            owner = getattr(module, owner_name) if owner_name else module
            wrap(owner, name, f"{owner_name or module_name.rsplit('.', 1)[1]}.{name}")

    def dump() -> None:
        totals["whole process (main thread)"] = [
            1,
            time.thread_time() - cpu0,
            time.perf_counter() - wall0,
        ]
        Path(out).write_text(json.dumps(totals))

    atexit.register(dump)
    sys.argv = ["conveyor", *argv]
    main()


def run_once(directory: Path, jobs: int, src: Path | None) -> dict[str, list[float]]:
    shutil.rmtree(directory / ".conveyor", ignore_errors=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        argv = [sys.executable, __file__, "--inside", out.name, "run", "-j", str(jobs)]
        subprocess.run(argv, cwd=directory, env=env, check=True, stdout=subprocess.DEVNULL)
        data: dict[str, list[float]] = json.loads(Path(out.name).read_text())
    return data


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        inside(sys.argv[3:], sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="python bench/cold_spans.py", description=__doc__)
    parser.add_argument("--n", type=float, default=1.0, help="scale (1 = W1 200, W2 1000)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="W1,W2")
    parser.add_argument("--src", type=Path, help="another checkout's src/ to measure")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="conveyor-spans-"))
    try:
        chain = wl.make_chain(base / "w1", max(2, round(200 * args.n)), ["conveyor"], None)
        fan = wl.make_fanout(base / "w2", max(2, round(1000 * args.n)), ["conveyor"], None)
        for label, work, jobs in (("W1", chain, 1), ("W2", fan, 2)):
            if label not in args.only.upper().split(","):
                continue
            directory = work.tool_dir("conveyor")
            runs = []
            for _ in range(args.reps):
                wl.remove_outputs(directory, work.outputs, work.output_dirs)
                runs.append(run_once(directory, jobs, args.src))
            print(f"== {label} ({work.size} steps, -j{jobs}), medians of {args.reps} runs")
            print(f"  {'span':34} {'calls':>6} {'cpu ms':>9} {'per call':>9} {'wall ms':>9}")
            names = sorted(runs[0], key=lambda k: -statistics.median(r[k][1] for r in runs))
            for name in names:
                calls = statistics.median(r[name][0] for r in runs)
                cpu = statistics.median(r[name][1] for r in runs) * 1e3
                wall = statistics.median(r[name][2] for r in runs) * 1e3
                per = cpu / calls if calls else 0.0
                print(f"  {name:34} {calls:6.0f} {cpu:9.1f} {per:9.3f} {wall:9.1f}")
        print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
