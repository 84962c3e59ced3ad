"""The SDK's start-up: ``import conveyor`` and a ``Client``'s first calls, against a bare
``python -c pass`` (this interpreter).

python bench/bench_import.py               # medians of 15, interleaved
python bench/bench_import.py --reps 31 --json import.json

Builds a W1 chain of 200 steps (``bench/workloads.py``) in a temporary directory and runs
it once (so its records exist), warms the bytecode cache, then times each snippet in a
fresh interpreter ``--reps`` times, interleaved, in that project. The issue's goal is
``import conveyor`` under 150 ms (wall, the interpreter's start-up included). Nothing
asserts on time.
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
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workloads import make_chain

GOAL_MS = 150.0
SNIPPETS = {
    "python -c pass": "pass",
    "import conveyor": "import conveyor",
    "conveyor.Client (the attribute)": "import conveyor; conveyor.Client",
    "Client().runs()": "import conveyor; conveyor.Client().runs()",
    "Client().get_run() as HTML": "import conveyor; conveyor.Client().get_run()._repr_html_()",
}


def _time(code: str, cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the medians (ms) here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="conveyor-import-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # users have .pyc files
    try:
        project = make_chain(root / "c200", 200, ("conveyor",), None).tool_dir("conveyor")
        subprocess.run(
            [sys.executable, "-c", "import conveyor; conveyor.Client().run(progress=False)"],
            cwd=project,
            env=env,
            check=True,
        )
        for code in SNIPPETS.values():  # compile bytecode, warm the page cache
            _time(code, project, env)
        times: dict[str, list[float]] = {name: [] for name in SNIPPETS}
        for _ in range(args.reps):
            for name, code in SNIPPETS.items():
                times[name].append(_time(code, project, env))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    base = medians["python -c pass"]
    load = os.getloadavg()[0]
    print(f"medians of {args.reps}, interleaved; load average {load:.1f} on {os.cpu_count()} cores")
    print("| snippet (fresh interpreter) | wall | minus `python -c pass` |")
    print("| --- | --- | --- |")
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} ms | {value - base:.1f} ms |")
    verdict = "met" if medians["import conveyor"] <= GOAL_MS else "missed"
    print(f"\nimport conveyor: {medians['import conveyor']:.1f} ms, goal {GOAL_MS:g} ms: {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"load": load, "ms": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
