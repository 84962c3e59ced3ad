"""The Spark executor against a plain PySpark job doing the same work, same master, same run.

    eval "$(scripts/engines/spark.sh env)"      # after scripts/engines/spark.sh up
    python bench/bench_spark.py                 # 1000 python datums, best of 3
    python bench/bench_spark.py --n 200 --reps 1 --keep
    python bench/bench_spark.py --workload shell

``--workload python`` (the default): a fresh git repository holds ``--n`` data files
``data/d<i>.txt`` and ``fn/work.py``; its ``conveyor.yml`` has one step,
``python: fn.work:square`` with ``datums: data/*.txt``, so every datum is a step
instance that calls the function and writes ``out/d<i>.json``. Timed is
``conveyor run --executor spark --force`` (every datum runs). Reference: a plain PySpark
script that maps the same function over the same ``--n`` paths (one partition each,
the function called in the Python worker, the files read where they are) and writes the
same JSON files from the driver.

``--workload shell``: a matrix job of ``--n`` instances, each
``mkdir -p out && echo $i > out/$i.txt``; the reference runs the same shell commands as
``--n`` tasks in a scratch directory per task and writes the returned files.

Packed datums (``--modes``, default both): ``unpacked`` runs the project with
``datums_per_task = 1`` (one Spark task per datum) against the plain job with one
partition per item (target at most 1.3x); ``packed`` runs it with ``datums_per_task =
"auto"`` (a few tasks per core, each running its datums in turn) against the plain job
with Spark's default partitioning, ``sc.parallelize(items)`` (target at most 1.5x, issue
11). Each mode has its own project directory.

All are timed as whole processes, so all include the interpreter start and the
SparkContext start and stop (about 7 s of each). Repetitions alternate between them;
the best of ``--reps`` of each is compared with its baseline's best. Nothing asserts on
time; a wrong output makes the exit code 1.
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

TARGETS = {"unpacked": 1.3, "packed": 1.5}
"""Conveyor's time over its baseline's, per mode."""
PER_TASK = {"unpacked": "1", "packed": '"auto"'}
PARTITIONS = {"unpacked": "each", "packed": "default"}
"""The plain job's partitions: one per item, or Spark's default (``defaultParallelism``)."""
CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]

PLAIN_JOB = """
import os, shutil, subprocess, sys, tempfile, time
from pyspark import SparkConf, SparkContext

def run_one(i):
    scratch = tempfile.mkdtemp(prefix="plain-")
    try:
        cmd = f"mkdir -p out && echo {i} > out/{i}.txt"
        p = subprocess.run(["/bin/sh", "-e", "-c", cmd], cwd=scratch,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(os.path.join(scratch, "out", f"{i}.txt"), "rb") as f:
            return i, p.returncode, p.stdout, f.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

def main():
    master, n, out, parts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    t0 = time.monotonic()
    conf = (SparkConf().setMaster(master).setAppName("plain-pyspark")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false")
            .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1"))
    sc = SparkContext(conf=conf)
    t1 = time.monotonic()
    items = range(n)
    rdd = sc.parallelize(items, n) if parts == "each" else sc.parallelize(items)
    results = rdd.map(run_one).collect()
    t2 = time.monotonic()
    os.makedirs(out, exist_ok=True)
    for i, code, _log, data in results:
        assert code == 0
        with open(os.path.join(out, f"{i}.txt"), "wb") as f:
            f.write(data)
    sc.stop()
    print(f"session {t1 - t0:.2f}s job {t2 - t1:.2f}s", file=sys.stderr)

main()
"""


FUNCTION = """\
def square(path):
    with open(path, encoding="utf-8") as handle:
        n = int(handle.read())
    return {"n": n, "square": n * n}
"""

PLAIN_PYTHON_JOB = """
import json, os, sys, time
from pyspark import SparkConf, SparkContext

def square(path):
    with open(path, encoding="utf-8") as handle:
        n = int(handle.read())
    return {"n": n, "square": n * n}

def main():
    master, data, out, parts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    t0 = time.monotonic()
    conf = (SparkConf().setMaster(master).setAppName("plain-pyspark")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false")
            .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1"))
    sc = SparkContext(conf=conf)
    t1 = time.monotonic()
    paths = sorted(os.path.join(data, name) for name in os.listdir(data))
    rdd = sc.parallelize(paths, len(paths)) if parts == "each" else sc.parallelize(paths)
    results = rdd.map(lambda p: (p, square(p))).collect()
    t2 = time.monotonic()
    os.makedirs(out, exist_ok=True)
    for path, value in results:
        stem = os.path.basename(path).rsplit(".", 1)[0]
        with open(os.path.join(out, stem + ".json"), "w") as f:
            f.write(json.dumps(value, sort_keys=True, indent=2) + "\\n")
    sc.stop()
    print(f"session {t1 - t0:.2f}s job {t2 - t1:.2f}s", file=sys.stderr)

main()
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def write_data(data: Path, n: int) -> None:
    data.mkdir(parents=True)
    for i in range(n):
        (data / f"d{i}.txt").write_text(f"{i}\n")


def make_project(root: Path, n: int, master: str, workload: str, mode: str) -> Path:
    project = root / f"conveyor-{mode}"
    project.mkdir()
    _git(project, "init", "-q", "-b", "main")
    _git(project, "config", "user.email", "bench@example.invalid")
    _git(project, "config", "user.name", "bench")
    if workload == "python":
        write_data(project / "data", n)
        (project / "fn").mkdir()
        (project / "fn" / "work.py").write_text(FUNCTION)
        (project / "conveyor.yml").write_text(
            "name: spark-datums\n"
            "jobs:\n"
            "  datum:\n"
            "    steps:\n"
            "      - python: fn.work:square\n"
            "        datums: data/*.txt\n"
            "        result: out/${{ datum.stem }}.json\n"
        )
    else:
        values = ", ".join(str(i) for i in range(n))
        (project / "conveyor.yml").write_text(
            "name: spark-datums\n"
            "jobs:\n"
            "  datum:\n"
            f"    matrix:\n      i: [{values}]\n"
            "    steps:\n"
            "      - run: mkdir -p out && echo ${{ matrix.i }} > out/${{ matrix.i }}.txt\n"
            '        outputs: ["out/${{ matrix.i }}.txt"]\n'
        )
    (project / ".gitignore").write_text("out/\n")
    (project / ".conveyor").mkdir()
    (project / ".conveyor" / "config.toml").write_text(
        f'[project]\nexecutor = "spark"\n\n[executors.spark]\nmaster = "{master}"\n'
        f"datums_per_task = {PER_TASK[mode]}\nstart_timeout = 120\n"
    )
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "bench")
    return project


def check_outputs(out: Path, n: int, workload: str) -> str | None:
    for i in range(n):
        if workload == "python":
            path = out / f"d{i}.json"
            expected = json.dumps({"n": i, "square": i * i}, sort_keys=True, indent=2) + "\n"
        else:
            path, expected = out / f"{i}.txt", f"{i}\n"
        if not path.is_file() or path.read_text() != expected:
            return f"{path} missing or wrong"
    return None


def time_conveyor(project: Path, n: int, logs: Path, workload: str) -> tuple[float, str | None]:
    shutil.rmtree(project / "out", ignore_errors=True)
    start = time.monotonic()
    with open(logs / f"{project.name}.log", "a") as log:
        proc = subprocess.run(
            [*CONVEYOR, "run", "--executor", "spark", "--force"],
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        return elapsed, f"conveyor run exited {proc.returncode}; see {logs / project.name}.log"
    shown = subprocess.run(
        [*CONVEYOR, "show", "latest", "--json"], cwd=project, capture_output=True, text=True
    )
    steps = json.loads(shown.stdout)["steps"]
    ran = [s for s in steps if s.get("status") == "succeeded" and not s.get("cached")]
    if len(ran) != n:
        return elapsed, f"{len(ran)} of {n} steps ran (expected all)"
    return elapsed, check_outputs(project / "out", n, workload)


def time_plain(
    root: Path, n: int, master: str, logs: Path, workload: str, parts: str
) -> tuple[float, str | None]:
    script = root / "plain_job.py"
    script.write_text(PLAIN_PYTHON_JOB if workload == "python" else PLAIN_JOB)
    out = root / f"plain-{parts}-out"
    shutil.rmtree(out, ignore_errors=True)
    data = root / "plain-data"
    if workload == "python" and not data.exists():
        write_data(data, n)
    start = time.monotonic()
    with open(logs / "plain.log", "a") as log:
        proc = subprocess.run(
            [
                sys.executable,
                str(script),
                master,
                str(data if workload == "python" else n),
                str(out),
                parts,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        return elapsed, f"the plain job exited {proc.returncode}; see {logs / 'plain.log'}"
    return elapsed, check_outputs(out, n, workload)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="datums (default 1000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (best of)")
    parser.add_argument(
        "--master",
        default=os.environ.get("CONVEYOR_SPARK_MASTER", "spark://127.0.0.1:7077"),
        help="Spark master (default: $CONVEYOR_SPARK_MASTER)",
    )
    parser.add_argument(
        "--workload",
        choices=("python", "shell"),
        default="python",
        help="python: a python: step over datums (default); shell: a matrix of shell steps",
    )
    parser.add_argument(
        "--modes",
        default="unpacked,packed",
        help="unpacked (one task per datum), packed (datums_per_task auto), or both",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(TARGETS):
        parser.error(f"--modes takes {', '.join(TARGETS)} (comma-separated)")

    root = Path(tempfile.mkdtemp(prefix="conveyor-bench-spark-"))
    logs = root / "logs"
    logs.mkdir()
    projects = {m: make_project(root, args.n, args.master, args.workload, m) for m in modes}
    times: dict[str, list[float]] = {}
    failures = []
    print(
        f"{args.n} {args.workload} datums on {args.master}, best of {args.reps} "
        "(session start included)"
    )
    try:
        for rep in range(1, args.reps + 1):
            for mode in modes:
                for name in (f"conveyor-{mode}", f"plain-{PARTITIONS[mode]}"):
                    if name.startswith("conveyor"):
                        elapsed, error = time_conveyor(projects[mode], args.n, logs, args.workload)
                    else:
                        elapsed, error = time_plain(
                            root, args.n, args.master, logs, args.workload, PARTITIONS[mode]
                        )
                    print(
                        f"  rep {rep} {name:18} {elapsed:7.2f}s"
                        + (f"  FAILED: {error}" if error else "")
                    )
                    if error:
                        failures.append(f"{name}: {error}")
                    else:
                        times.setdefault(name, []).append(elapsed)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    for mode in modes:
        ours, plain = f"conveyor-{mode}", f"plain-{PARTITIONS[mode]}"
        if ours not in times or plain not in times:
            print(f"{mode}: no comparison: " + "; ".join(failures))
            continue
        best_c, best_p = min(times[ours]), min(times[plain])
        ratio = best_c / best_p
        verdict = "PASS" if ratio <= TARGETS[mode] else "MISS"
        print(
            f"{mode:8} conveyor best {best_c:7.2f}s, plain PySpark ({PARTITIONS[mode]} "
            f"partitions) best {best_p:7.2f}s: ratio {ratio:.2f}x "
            f"(target <= {TARGETS[mode]}x): {verdict}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
