"""A pipeline written in Python against the same pipeline in YAML: 200 trivial steps.

python bench/bench_pyflow.py                 # 200 steps, best of 3, interleaved
python bench/bench_pyflow.py --steps 50 --reps 5 --json pyflow.json

Builds one git repository in a temporary directory holding ``pipeline.py``: 200 steps,
a chain of ``inc`` calls in groups (``--width`` independent chains), each step taking the
previous one's ``int`` and returning it plus one. Three ways to run it, each timed from
scratch (``.conveyor/`` and the results removed) and again with nothing changed (a no-op:
every step from cache):

- ``python``: ``conveyor run pipeline.py`` (traced in a child process, then run);
- ``yaml``: ``conveyor run -f conveyor.yml``, the file ``conveyor convert`` writes from it
  (the same plan, so the same steps: the difference is loading ``pipeline.py``);
- ``yaml-python-steps``: the same DAG as native ``python: module:function`` steps (the
  standard-library runner with JSON results, no typed values), for reference.

Prints the best wall and CPU times of each (CPU: user + system of the CLI and its
steps, steadier than wall time on a shared machine) and the ratios of ``python`` to the
others (the issue's target: within 1.3x of YAML). Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.3


def _conveyor() -> list[str]:
    found = shutil.which("conveyor")
    return [found] if found else [sys.executable, "-m", "conveyor.cli.main"]


def write_project(root: Path, steps: int, width: int) -> None:
    calls = []
    for chain in range(width):
        calls.append(f"    v{chain} = inc(0, {chain})")
    for index in range(width, steps):
        chain = index % width
        calls.append(f"    v{chain} = inc(v{chain}, {chain})")
    (root / "pipeline.py").write_text(
        "import conveyor\n\n\n"
        "@conveyor.step\ndef inc(value: int, chain: int) -> int:\n    return value + 1\n\n\n"
        "@conveyor.pipeline\ndef chains() -> None:\n" + "\n".join(calls) + "\n",
        encoding="utf-8",
    )
    functions = ["import json\n"]
    lines = ["jobs:", "  chains:", "    steps:"]
    for index in range(steps):
        before = index - width
        read = f'json.load(open("results/s{before}.json"))' if before >= 0 else "0"
        functions.append(f"def s{index}():\n    return {read} + 1\n")
        lines += [
            f"      - id: s{index}",
            f"        python: native:s{index}",
            f"        result: results/s{index}.json",
            f"        needs: [{f's{before}' if before >= 0 else ''}]",
        ]
        if before >= 0:
            lines.append(f"        inputs: [results/s{before}.json]")
    (root / "native.py").write_text("\n\n".join(functions), encoding="utf-8")
    (root / "native.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / ".gitignore").write_text("_pyflow/\nresults/\n", encoding="utf-8")
    env_git = ["-c", "user.email=b@example.invalid", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    converted = subprocess.run(
        [*_conveyor(), "convert", "-f", "pipeline.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    (root / "converted.yml").write_text(converted.stdout, encoding="utf-8")
    (root / "results").mkdir()
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *env_git, "commit", "-qm", "bench"], cwd=root, check=True)


def _clean(root: Path) -> None:
    for name in (".conveyor", "_pyflow"):
        shutil.rmtree(root / name, ignore_errors=True)
    for path in (root / "results").glob("*"):
        path.unlink()


def _run(root: Path, argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, steps included) of one run, in seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*_conveyor(), "run", "-j", "2", *argv],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"conveyor run {' '.join(argv)} failed in {root}")
    return wall, usage.ru_utime + usage.ru_stime


WAYS = {
    "python": ["pipeline.py"],
    "yaml": ["-f", "converted.yml"],
    "yaml-python-steps": ["-f", "native.yml"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=4, help="independent chains")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    keys = ("scratch", "scratch-cpu", "noop", "noop-cpu")
    best: dict[str, dict[str, float]] = {w: dict.fromkeys(keys, 1e9) for w in WAYS}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-pyflow-") as tmp:
        root = Path(tmp)
        write_project(root, args.steps, args.width)
        for _ in range(args.reps):
            for way, argv in WAYS.items():  # interleaved: each round sees the same load
                _clean(root)
                for kind in ("scratch", "noop"):
                    wall, cpu = _run(root, argv)
                    best[way][kind] = min(best[way][kind], wall)
                    best[way][f"{kind}-cpu"] = min(best[way][f"{kind}-cpu"], cpu)
    print(f"{args.steps} trivial steps ({args.width} chains), -j 2, best of {args.reps}")
    print(f"{'':20} {'scratch wall':>13} {'cpu':>8} {'no-op wall':>11} {'cpu':>8}")
    for way, t in best.items():
        print(
            f"{way:20} {t['scratch']:12.2f}s {t['scratch-cpu']:7.2f}s "
            f"{t['noop']:10.2f}s {t['noop-cpu']:7.2f}s"
        )
    for kind in keys:
        ratio = best["python"][kind] / best["yaml"][kind]
        verdict = "PASS" if ratio <= TARGET else "MISS"
        reference = best["python"][kind] / best["yaml-python-steps"][kind]
        print(
            f"python / yaml ({kind}): {ratio:.2f}x  [{verdict}, target {TARGET}x]; "
            f"python / yaml-python-steps: {reference:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(best, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
