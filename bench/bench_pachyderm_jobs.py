"""A Pachyderm job over a dataset of small files vs the local executor over the same files.

    python bench/bench_pachyderm_jobs.py               # 200 files (scaled down)
    python bench/bench_pachyderm_jobs.py --full        # the issue's 10,000 datums
    python bench/bench_pachyderm_jobs.py --files 1000 -j 2

Figures, each one wall time of the real CLI (start-up included):

- **cold job**: ``conveyor pipeline run edges -j J`` over N files (one datum per file,
  run in bubblewrap lanes: one sandbox per `-j` slot), per datum;
- **local executor**: ``conveyor run -j J`` of a step with ``datums`` over the same N
  files in the project (one step instance per file, each a shell), per step; the ratio
  of the two is the issue's (target 1.2);
- **one file added**: the next job after one more file is put (one datum runs, the
  others are reused); the issue's target is under 2 s.

Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
SPEC = {
    "pipeline": {"name": "edges"},
    "transform": {"cmd": ["sh", "-c", 'tr a-z A-Z < "$images" > /pfs/out/"${images##*/}"']},
    "input": {"pfs": {"repo": "images", "glob": "/data/*"}},
}
PIPELINE = """\
name: bench
jobs:
  edges:
    steps:
      - id: upper
        datums: data/*.txt
        run: tr a-z A-Z < "$CONVEYOR_DATUM" > /dev/null
"""


def cli(cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [*CONVEYOR, *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"conveyor {' '.join(args)} failed:\n{done.stderr}")
    return took


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="10,000 files")
    parser.add_argument("-j", type=int, default=2)
    args = parser.parse_args()
    count = 10_000 if args.full else args.files
    with tempfile.TemporaryDirectory(prefix="bench-pach-") as tmp:
        root = Path(tmp) / "project"
        (root / "data").mkdir(parents=True)
        for i in range(count):
            (root / "data" / f"f{i:05}.txt").write_text(f"file number {i}\n")
        (root / "conveyor.yml").write_text(PIPELINE)
        (root / "edges.json").write_text(json.dumps(SPEC))
        git(root, "init", "-q", "-b", "main")
        git(root, "-c", "user.email=b@e.x", "-c", "user.name=B", "add", "-A")
        git(root, "-c", "user.email=b@e.x", "-c", "user.name=B", "commit", "-qm", "bench")
        local = cli(root, "run", "-j", str(args.j))
        cli(root, "data", "create", "images")
        cli(root, "data", "put", "images", "-r", str(root / "data"))
        cli(root, "pipeline", "create", "-f", "edges.json")
        cold = cli(root, "pipeline", "run", "edges", "-j", str(args.j))
        extra = Path(tmp) / "new.txt"
        extra.write_text("one more file\n")
        cli(root, "data", "put", "images:/data/", str(extra))
        one = cli(root, "pipeline", "run", "edges", "-j", str(args.j))
    per_datum, per_step = cold / count, local / count
    print(f"{count} files, -j {args.j}, load {os.getloadavg()[0]:.1f}")
    print(f"cold job:        {cold:8.2f} s  {per_datum * 1000:7.1f} ms per datum")
    print(f"local executor:  {local:8.2f} s  {per_step * 1000:7.1f} ms per step")
    print(f"ratio:           {per_datum / per_step:8.2f}   (target 1.2)")
    print(f"one file added:  {one:8.2f} s  (target < 2 s)")


if __name__ == "__main__":
    main()
