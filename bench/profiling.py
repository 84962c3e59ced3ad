"""Where Conveyor's time goes on W1 (from scratch) and W3 (nothing changed).

    python bench/profiling.py [--n 1] [--out DIR] [--top 25]

Generates the workloads (Conveyor only) in a temporary directory, then runs
``conveyor run`` through bench/conveyor_entry.py under ``python -X importtime`` and under
cProfile, and prints: the import time by top-level package, the wall time, and the
functions with the most cumulative and own time. The .prof files stay in --out.
"""

from __future__ import annotations

import argparse
import io
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import workloads as wl

ENTRY = Path(__file__).resolve().parent / "conveyor_entry.py"
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def conveyor(args: list[str], cwd: Path, *prefix: str) -> tuple[float, str]:
    """Run the CLI in a fresh interpreter; returns (wall seconds, stderr)."""
    argv = [sys.executable, *prefix, str(ENTRY), *args]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed in {cwd}:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stderr


def import_summary(stderr: str, top: int) -> str:
    """Total import time and the top-level packages that cost the most (cumulative)."""
    by_package: dict[str, int] = defaultdict(int)
    total = 0
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cumulative, indent, name = match.groups()
        total += int(own)
        if len(indent) == 1:  # imported directly by the entry point or by the interpreter
            by_package[name.split(".")[0]] += int(cumulative)
    lines = [f"  all imports: {total / 1e6:.3f}s (sum of self times)"]
    for name, micros in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {micros / 1e6:8.3f}s  {name}")
    return "\n".join(lines)


def deep_imports(stderr: str, top: int) -> str:
    """The most expensive individual modules by cumulative time (any depth)."""
    rows = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            rows.append((int(match.group(2)), match.group(4)))
    rows.sort(reverse=True)
    return "\n".join(f"  {us / 1e6:8.3f}s  {name}" for us, name in rows[:top])


def profile_summary(path: Path, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def reset(work: wl.Workload) -> Path:
    directory = work.tool_dir("conveyor")
    shutil.rmtree(directory / ".conveyor", ignore_errors=True)
    wl.remove_outputs(directory, work.outputs, work.output_dirs)
    return directory


# the functions whose callees show where a run's time goes, per step
HOT_PATHS = (
    r"running.py:\d+\(start_run\)",
    r"runner.py:\d+\(execute\)",
    r"runner.py:\d+\(_launch\)",
    r"runner.py:\d+\(_submit\)",
    r"local.py:\d+\(submit\)",
    r"runner.py:\d+\(_succeed\)",
    r"runner.py:\d+\(_serve_from_cache\)",
    r"workspace.py:\d+\(store_outputs\)",
)


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    return f"{Path(filename).name}:{line}({name})"


def hot_paths(path: Path, rows: int = 6) -> str:
    """For each hot function: its total, and its most expensive callees (time per call)."""
    stats = pstats.Stats(str(path))
    stats.calc_callees()
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    callees_of: dict[Any, Any] = stats.all_callees  # type: ignore[attr-defined]
    lines = []
    for pattern in HOT_PATHS:
        for func, (_, calls, _, cumulative, _) in table.items():
            if not re.search(pattern, _where(func)):
                continue
            lines.append(f"  {_where(func)}: {cumulative:.3f}s in {calls} calls")
            ranked = sorted(callees_of[func].items(), key=lambda kv: -kv[1][3])[:rows]
            for callee, (ncalls, _, _, cum, *_) in ranked:
                per = cum / ncalls * 1000 if ncalls else 0.0
                lines.append(f"    {cum:7.3f}s {ncalls:6d}x {per:7.3f}ms  {_where(callee)}")
    return "\n".join(lines)


def profile_one(
    label: str, work: wl.Workload, jobs: int, out: Path, top: int, report: list[str]
) -> None:
    directory = work.tool_dir("conveyor")
    run = ["run", "-j", str(jobs)]
    from_scratch = label != "W3"  # W3 starts from the state the previous run left

    if from_scratch:
        reset(work)
    wall, stderr = conveyor(run, directory, "-X", "importtime")
    report.append(f"== {label} under -X importtime: wall {wall:.3f}s")
    report.append(import_summary(stderr, top // 2))
    report.append("  most expensive modules (cumulative):")
    report.append(deep_imports(stderr, top // 2))
    (out / f"{label}-importtime.txt").write_text(stderr)

    if from_scratch:
        reset(work)
    prof = out / f"{label}.prof"
    wall, _ = conveyor(run, directory, "-m", "cProfile", "-o", str(prof))
    report.append(f"== {label} under cProfile: wall {wall:.3f}s ({prof})")
    report.append(hot_paths(prof))
    summary = profile_summary(prof, top)
    (out / f"{label}-cprofile.txt").write_text(summary)
    report.append(summary)

    if from_scratch:
        reset(work)
    wall, _ = conveyor(run, directory)
    report.append(f"== {label} plain: wall {wall:.3f}s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/profiling.py", description=__doc__)
    parser.add_argument("--n", type=float, default=1.0, help="scale factor (1 = W1 200, W2 1000)")
    parser.add_argument("--out", type=Path, help="directory for .prof files and reports")
    parser.add_argument(
        "--only", default="W3,W1", help="which of W1,W2,W3 to profile (default: W3,W1)"
    )
    parser.add_argument("--top", type=int, default=25, help="rows per listing")
    parser.add_argument("--tmpdir", type=Path, help="where to make the temporary directory")
    args = parser.parse_args()
    only = {w.strip().upper() for w in args.only.split(",")}
    base = Path(tempfile.mkdtemp(prefix="conveyor-profile-", dir=args.tmpdir))
    out = args.out or base / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    n1, n2 = max(2, round(200 * args.n)), max(2, round(1000 * args.n))
    try:
        chain = wl.make_chain(base / "w1", n1, ["conveyor"], None)
        fan = wl.make_fanout(base / "w2", n2, ["conveyor"], None)
        conveyor(["run", "-j", "2"], reset(fan))  # builds the state W3 starts from
        version_s, _ = conveyor(["--version"], base)
        report = [f"== startup: `conveyor --version` {version_s:.3f}s"]
        plans = {"W2": (fan, 2), "W3": (fan, 2), "W1": (chain, 1)}
        for label in ("W2", "W3", "W1"):  # W3 after W2: both use the fan-out project
            if label in only:
                profile_one(label, *plans[label], out, args.top, report)
        text = "\n".join(report)
        (out / "report.txt").write_text(text)
        print(text)
        print(f"\nprofiles and reports in {out}")
    finally:
        if args.out is None:
            print(f"(kept {base}; remove it when done)")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
