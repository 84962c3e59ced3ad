"""Conveyor's benchmark: W1-W4 against make (and Snakemake and DVC when available), W5
hashing against b3sum. Run ``python bench/run.py --help``; see bench/README.md.

Everything is generated in a temporary directory at run time. Timings are wall times,
best of ``--reps``; nothing here asserts on time, the targets are only reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import hashbench
import tools as toolmod
import workloads as wl

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")
BASE_W1, BASE_W2, BASE_W5 = 200, 1000, 2 * hashbench.GIB
# the recorded Snakemake figures (scale 1), used only when Snakemake cannot run
RECORDED_SNAKEMAKE = {"W3": 1.36, "W4": 2.6}
TARGETS: dict[str, tuple[str, str, float]] = {
    # workload: (reference, comparison, bound) on conveyor/reference wall time; the
    # bounds of the speed issue (W1 2x make, W2 1.5x make, W3/W4 0.1x Snakemake)
    "W1": ("make", "<=", 2.0),
    "W2": ("make", "<=", 1.5),
    "W3": ("snakemake", "<=", 0.1),
    "W4": ("snakemake", "<=", 0.1),
    "W5": ("b3sum", ">=", 0.8),  # throughput ratio
}
REF_COLUMNS = ("make", "snakemake", "dvc")


@dataclass
class Cell:
    times: list[float] = field(default_factory=list)
    error: str | None = None
    timed_out: float | None = None
    """The time limit a run exceeded (then ``error`` says so)."""

    def text(self) -> str:
        if self.timed_out is not None:
            return f">{self.timed_out:g}"
        return "FAIL" if self.error else _fmt(self.best)

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times and self.error is None else None


@dataclass
class Row:
    workload: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ratio: float | None = None
    reference: str | None = None
    verdict: str = "n/a"


@dataclass
class ScaleResult:
    scale: float
    w1_steps: int
    w2_leaves: int
    w5_bytes: int
    rows: list[Row] = field(default_factory=list)
    hashing: hashbench.HashResult | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, base: Path, tools: list[toolmod.Tool]) -> None:
        self.args = args
        self.base = base
        self.tools = tools
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dvc = next((Path(t.executable) for t in tools if t.name == "dvc"), None)

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # -- one scale ------------------------------------------------------------------
    def run_scale(self, scale: float, selected: set[str]) -> ScaleResult:
        n1 = max(2, round(BASE_W1 * scale))
        n2 = max(2, round(BASE_W2 * scale))
        size = max(64, round(BASE_W5 * scale / 2**20)) * 2**20
        result = ScaleResult(scale, n1, n2, size)
        root = self.base / f"scale-{scale:g}"
        names = [t.name for t in self.tools]
        if "W1" in selected:
            chain = wl.make_chain(root / "w1", n1, names, self.dvc)
            label = f"W1 chain of {n1} (-j1)"
            result.rows.append(self.from_scratch(chain, label, 1, self.args.reps))
        if selected & {"W2", "W3", "W4"}:
            fan = wl.make_fanout(root / "w2", n2, names, self.dvc)
            # W3/W4 alone still need W2 built once (untimed for the table)
            reps = self.args.reps if "W2" in selected else 1
            built = self.from_scratch(fan, f"W2 {n2} leaves + join (-j2)", 2, reps)
            if "W2" in selected:
                result.rows.append(built)
            if "W3" in selected:
                result.rows.append(self.no_change(fan, built))
            if "W4" in selected:
                result.rows.append(self.one_leaf_changed(fan, built))
        if "W5" in selected:
            result.hashing = self.hashing(root / "w5", size)
            result.rows.append(self.hash_row(result.hashing))
        for row in result.rows:
            judge(row, scale)
        return result

    def _each(
        self,
        row: Row,
        reps: int,
        body: Callable[[toolmod.Tool, int], float],
        after: Row | None = None,
    ) -> None:
        """Run ``body`` for every tool and repetition (interleaved), collecting times.

        With ``after``, a tool that failed or timed out in that row is left out here.
        """
        tools = [t for t in self.tools if after is None or after.cells[t.name].best is not None]
        for tool in self.tools:
            if tool not in tools:
                row.notes.append(
                    f"{tool.name}: skipped, its {after and after.workload} did not finish"
                )
        for tool in tools:
            row.cells[tool.name] = Cell()
        for rep in range(reps):
            for tool in tools:
                cell = row.cells[tool.name]
                if cell.error is not None or (rep > 0 and cell.times[0] > self.args.slow):
                    continue
                try:
                    cell.times.append(body(tool, rep))
                except toolmod.ToolTimedOut as exc:
                    cell.error, cell.timed_out = str(exc), exc.limit
                    if tool.name == "conveyor":
                        _loud(row, str(exc))
                    else:
                        row.notes.append(str(exc))
                except (toolmod.ToolFailed, OSError, ValueError) as exc:
                    cell.error = str(exc)
                    _loud(row, f"{tool.name}: {exc}")
        for name, cell in row.cells.items():
            if 0 < len(cell.times) < reps and cell.error is None:
                row.notes.append(
                    f"{name} ran once only: its first run took {cell.times[0]:.0f}s "
                    f"(over --slow {self.args.slow:g}s)"
                )
        self.progress(row)

    def progress(self, row: Row) -> None:
        best = ", ".join(
            f"{name} {_fmt(cell.best)}" for name, cell in row.cells.items() if cell.times
        )
        print(f"  {row.label}: {best}", flush=True)

    def from_scratch(self, work: wl.Workload, label: str, jobs: int, reps: int) -> Row:
        """W1/W2: every repetition starts without outputs or tool state."""
        row = Row(work.name, label)
        log = self.log(work.name)

        def body(tool: toolmod.Tool, rep: int) -> float:
            directory = work.tool_dir(tool.name)
            tool.reset(directory, work.repo)
            wl.remove_outputs(directory, work.outputs, work.output_dirs)
            elapsed = tool.run(directory, jobs, log, self.args.timeout)
            check_product(work, directory)
            return elapsed

        self._each(row, reps, body)
        return row

    def no_change(self, work: wl.Workload, built: Row) -> Row:
        """W3: W2 again with nothing changed; no output may be rewritten."""
        row = Row("W3", f"W3 = W2, nothing changed (-j2, {work.size} leaves)")
        log = self.log("W3")

        def body(tool: toolmod.Tool, rep: int) -> float:
            directory = work.tool_dir(tool.name)
            before = wl.mtimes(directory, work.outputs)
            elapsed = tool.run(directory, 2, log, self.args.timeout)
            changed = _changed(before, wl.mtimes(directory, work.outputs))
            if changed:
                _loud(row, f"{tool.name} rewrote {len(changed)} outputs with nothing changed")
            if tool.name == "conveyor":
                ran = self.conveyor_ran(directory)
                if ran:
                    _loud(row, f"conveyor: {len(ran)} steps not cached in W3: {sorted(ran)[:5]}")
            return elapsed

        self._each(row, self.args.reps, body, built)
        return row

    def one_leaf_changed(self, work: wl.Workload, built: Row) -> Row:
        """W4: one leaf's input changes; exactly that leaf and the join must run again."""
        row = Row("W4", f"W4 = W2, one leaf input changed (-j2, {work.size} leaves)")
        log = self.log("W4")
        reps = self.args.reps
        leaves = [(work.size // 2 + 1 + rep) % work.size for rep in range(reps)]

        def body(tool: toolmod.Tool, rep: int) -> float:
            directory = work.tool_dir(tool.name)
            leaf = leaves[rep]
            (directory / f"in/{leaf}.txt").write_text(wl.leaf_input(leaf, rep + 1))
            before = wl.mtimes(directory, work.outputs)
            elapsed = tool.run(directory, 2, log, self.args.timeout)
            changed = _changed(before, wl.mtimes(directory, work.outputs))
            expected = {f"out/{leaf}.txt", "all.txt"}
            if set(changed) != expected:
                _loud(
                    row,
                    f"{tool.name} rebuilt {len(changed)} targets, expected exactly 2 "
                    f"{sorted(expected)}: {sorted(changed)[:6]}",
                )
            if tool.name == "conveyor":
                ran = self.conveyor_ran(directory)
                want = {f"leaf[i={leaf}].copy", "join.join"}
                if ran != want:
                    _loud(
                        row,
                        f"conveyor show latest: {len(ran)} steps with cached=false, expected "
                        f"exactly 2 {sorted(want)}: {sorted(ran)[:6]}",
                    )
            check_product(work, directory)
            return elapsed

        self._each(row, reps, body, built)
        if not any(f.startswith("conveyor") for f in row.failures):
            row.notes.append(f"verified: conveyor re-ran exactly 2 steps in each of {reps} reps")
        return row

    def conveyor_ran(self, directory: Path) -> set[str]:
        """Step ids of the latest run with ``cached: false`` (from ``conveyor show``)."""
        conveyor = next(t for t in self.tools if t.name == "conveyor")
        proc = subprocess.run(
            [conveyor.executable, "show", "latest", "--json"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        )
        steps = json.loads(proc.stdout)["steps"]
        return {s["id"] for s in steps if not s["cached"]}

    # -- W5 -------------------------------------------------------------------------
    def hashing(self, directory: Path, size: int) -> hashbench.HashResult:
        directory.mkdir(parents=True, exist_ok=True)
        print(f"  W5: writing a {size / hashbench.GIB:.2f} GiB file and hashing it ...", flush=True)
        result = hashbench.run_w5(directory, size, self.args.reps, shutil.which("b3sum"))
        (directory / "blob.bin").unlink(missing_ok=True)
        return result

    def hash_row(self, res: hashbench.HashResult) -> Row:
        row = Row("W5", f"W5 hash {res.size / hashbench.GIB:.2f} GiB (BLAKE3)")
        row.cells["conveyor"] = Cell([res.conveyor_s] if res.conveyor_s else [])
        if res.b3sum_s:
            row.cells["b3sum"] = Cell([res.b3sum_s])
        for note in res.notes:
            if "MISMATCH" in note:
                _loud(row, note)
            else:
                row.notes.append(note)
        if res.cache_first_s is not None and res.cache_second_s is not None:
            near_zero = res.cache_second_s < 0.05 * res.cache_first_s
            row.notes.append(
                f"DigestCache.digest: 1st {res.cache_first_s:.3f}s, 2nd (same instance) "
                f"{res.cache_second_s:.4f}s [{'near zero' if near_zero else 'NOT near zero'}],"
                f" fresh instance after flush {res.cache_flushed_s:.4f}s"
            )
        self.progress(row)
        return row


def check_product(work: wl.Workload, directory: Path) -> None:
    """The final product is what the pipeline should make (a cheap correctness check)."""
    final = (directory / work.outputs[-1]).read_text()
    if work.name == "W1" and final.strip() != str(work.size):
        raise ValueError(f"{directory}/{work.outputs[-1]} holds {final.strip()!r}")
    if work.name == "W2" and len(final.splitlines()) != work.size:
        raise ValueError(f"{directory}/all.txt has {len(final.splitlines())} lines")


def _changed(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    return [path for path, mtime in after.items() if before.get(path) != mtime]


def _loud(row: Row, message: str) -> None:
    print(f"!!! {row.workload} CHECK FAILED: {message}", file=sys.stderr, flush=True)
    row.failures.append(message)


def judge(row: Row, scale: float) -> None:
    """Ratio against the issue's reference and PASS/MISS (never an assertion)."""
    reference, comparison, bound = TARGETS[row.workload]
    ours = row.cells.get("conveyor", Cell()).best
    theirs = row.cells.get(reference, Cell()).best
    row.reference = reference
    if theirs is None and row.workload in RECORDED_SNAKEMAKE:
        if scale == 1:
            theirs = RECORDED_SNAKEMAKE[row.workload]
            row.reference = "snakemake (recorded)"
            row.notes.append(
                f"Snakemake could not run here: compared with the issue's recorded {theirs}s"
            )
        else:
            row.notes.append("Snakemake could not run; its recorded figures are for scale 1")
    if ours is None or theirs is None:
        return
    # W5 compares throughput (higher is better): b3sum time / our time
    row.ratio = theirs / ours if comparison == ">=" else ours / theirs
    ok = row.ratio >= bound if comparison == ">=" else row.ratio <= bound
    row.verdict = "PASS" if ok else "MISS"


# -- output -------------------------------------------------------------------------


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.2f}"


def print_table(result: ScaleResult, reps: int) -> None:
    print()
    print(
        f"scale {result.scale:g}: W1 {result.w1_steps} steps, W2 {result.w2_leaves} leaves, "
        f"W5 {result.w5_bytes / hashbench.GIB:.2f} GiB; wall seconds, best of {reps}"
    )
    if all(row.workload == "W5" for row in result.rows):
        for row in result.rows:
            if result.hashing is not None:
                print_hashing(row, result.hashing)
            for note in row.notes + [f"FAILURE: {f}" for f in row.failures]:
                print(f"  {row.workload}: {note}")
        return
    head = (
        f"{'workload':<50}{'conveyor':>9}{'make':>9}{'snakemake':>10}{'dvc':>9}"
        f"{'/make':>8}{'/snake':>8}{'/dvc':>8}  {'target':<28}verdict"
    )
    print(head)
    print("-" * len(head))
    for row in result.rows:
        if row.workload == "W5":
            continue
        ours = row.cells.get("conveyor", Cell()).best
        times, ratios = [], []
        for ref in REF_COLUMNS:
            cell = row.cells.get(ref)
            times.append(cell.text() if cell else "-")
            best = cell.best if cell else None
            ratios.append(f"{ours / best:.2f}" if ours and best else "-")
        ours_text = row.cells.get("conveyor", Cell()).text()
        print(
            f"{row.label:<50}{ours_text:>9}{times[0]:>9}{times[1]:>10}{times[2]:>9}"
            f"{ratios[0]:>8}{ratios[1]:>8}{ratios[2]:>8}  {_target(row):<28}{_verdict(row)}"
        )
    print("(/make etc.: conveyor's wall time divided by that tool's; below 1 is faster)")
    for row in result.rows:
        if row.workload == "W5" and result.hashing is not None:
            print_hashing(row, result.hashing)
    for row in result.rows:
        for note in row.notes:
            print(f"  {row.workload}: {note}")
        for failure in row.failures:
            print(f"  {row.workload}: FAILURE: {failure}")


def _target(row: Row) -> str:
    reference, comparison, bound = TARGETS[row.workload]
    measure = "throughput" if row.workload == "W5" else "time"
    shown = row.reference or reference
    return f"{measure} {comparison} {bound}x {shown}"


def _verdict(row: Row) -> str:
    return f"{row.ratio:.2f}x {row.verdict}" if row.ratio is not None else row.verdict


def print_hashing(row: Row, res: hashbench.HashResult) -> None:
    def speed(seconds: float | None) -> str:
        rate = res.gib_per_s(seconds)
        return f"{_fmt(seconds)}s ({rate:.2f} GiB/s)" if rate else "-"

    print(
        f"{row.label}: conveyor hash_file {speed(res.conveyor_s)}, "
        f"b3sum {speed(res.b3sum_s)}; {_target(row)}: {_verdict(row)}"
    )


# -- main ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark Conveyor against make, Snakemake, DVC and b3sum.",
    )
    parser.add_argument(
        "--n",
        default="1",
        help="comma-separated scale factors (1 = W1 200 steps, W2 1000 leaves, W5 2 GiB)",
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="e.g. W1,W3")
    parser.add_argument("--json", type=Path, help="write all measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; the best counts")
    parser.add_argument(
        "--slow",
        type=float,
        default=60.0,
        help="a reference whose first run takes longer than this many seconds runs once",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="stop a tool's run after this many seconds (a reference is then reported as >N)",
    )
    parser.add_argument("--conveyor", help="the conveyor executable (default: from PATH)")
    parser.add_argument("--skip", default="", help="reference tools not to run, e.g. dvc,snakemake")
    parser.add_argument(
        "--ref-venv",
        type=Path,
        default=toolmod.DEFAULT_REF_VENV,
        help="virtual environment holding snakemake and dvc "
        "(default: ~/.cache/conveyor/oracles/bench-ref)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not try to pip-install snakemake and dvc into --ref-venv when missing",
    )
    parser.add_argument("--tmpdir", type=Path, help="where to make the temporary directory")
    args = parser.parse_args(argv)
    try:
        args.scales = [float(s) for s in args.n.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--n takes comma-separated numbers, got {args.n!r}")
    args.selected = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    unknown = args.selected - set(WORKLOADS)
    if unknown or not args.selected:
        parser.error(f"--only takes some of {','.join(WORKLOADS)}, got {args.only!r}")
    if args.reps < 1 or not args.scales or min(args.scales) <= 0:
        parser.error("--reps and every --n must be positive")
    args.skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def collect_tools(args: argparse.Namespace, base: Path) -> tuple[list[toolmod.Tool], list[str]]:
    tools = [toolmod.conveyor_tool(toolmod.find_conveyor(args.conveyor))]
    notes = [f"conveyor: {tools[0].executable} ({toolmod.tool_version(tools[0].executable)})"]
    needs_pipelines = bool(args.selected & {"W1", "W2", "W3", "W4"})
    if not needs_pipelines:
        return tools, notes
    make = toolmod.make_tool() if "make" not in args.skipped else None
    if make is not None:
        tools.append(make)
        notes.append(f"make: {make.executable} ({toolmod.tool_version(make.executable)})")
    else:
        notes.append("make: not available or skipped")
    wanted = [name for name in toolmod.REF_PACKAGES if name not in args.skipped]
    refs = toolmod.find_references(
        args.ref_venv, not args.no_install, wanted, base / "logs" / "install.log"
    )
    notes += refs.notes
    if refs.snakemake:
        tools.append(toolmod.snakemake_tool(refs.snakemake))
    if refs.dvc:
        tools.append(toolmod.dvc_tool(refs.dvc))
    return tools, notes


def compile_bytecode() -> str:
    """Byte-compile the conveyor package, as a regular (non-editable) install does: an
    editable checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every
    module on every start, a cost no installed copy pays."""
    import conveyor

    where = Path(conveyor.__file__).resolve().parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(where)], check=False)
    return f"conveyor byte-compiled in place ({where})"


def conveyor_source() -> str:
    """The commit of the conveyor package's checkout, and whether src/ has local edits."""
    try:
        import conveyor

        where = Path(conveyor.__file__).resolve().parent
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "."], cwd=where, capture_output=True, text=True
        ).stdout.strip()
    except (ImportError, OSError):
        return "unknown"
    return f"{where} at {head or '?'}" + (" with uncommitted changes" if dirty else "")


def environment(notes: list[str]) -> dict[str, object]:
    return {
        "conveyor_source": conveyor_source(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "tools": notes,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_end": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="conveyor-bench-", dir=args.tmpdir))
    (base / "logs").mkdir()
    results: list[ScaleResult] = []
    try:
        tools, notes = collect_tools(args, base)
        print(f"temporary directory: {base}")
        print(f"  conveyor source: {conveyor_source()}")
        print(f"  {compile_bytecode()}")
        for note in notes:
            print(f"  {note}")
        bench = Bench(args, base, tools)
        for scale in args.scales:
            print(f"scale {scale:g}:", flush=True)
            results.append(bench.run_scale(scale, args.selected))
        for result in results:
            print_table(result, args.reps)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\nload average now: {load} on {os.cpu_count()} CPUs (other work skews timings)")
        if args.json:
            payload = {
                "environment": environment(notes),
                "reps": args.reps,
                "results": [asdict(r) for r in results],
            }
            args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
            print(f"\nwrote {args.json}")
    finally:
        if args.keep:
            print(f"kept {base} (logs in {base / 'logs'})")
        else:
            shutil.rmtree(base, ignore_errors=True)
    failed = [f for r in results for row in r.rows for f in row.failures]
    if failed:
        print(f"\n{len(failed)} check(s) FAILED (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
