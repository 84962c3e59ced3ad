"""``conveyor ui``'s runs list at 100,000 runs: a page stays as fast at any depth.

    python bench/bench_ui_runs.py [--runs 100000] [--repeat 5]

Writes ``--runs`` run records (three pipelines, three triggers, one failure in seven)
into a project's own records file, serves it with the real ``conveyor ui`` on
127.0.0.1, and times the runs list (median of ``--repeat``): the first page, a page
100 pages deep (keyset: the ``after`` of the page before), the last page, and filtered
pages. The reference, measured in the same run, is the first page of a project of 100
runs: a ratio near 1 means the page does not grow with the records.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.ui_support import serve_ui  # noqa: E402

PIPELINE = "name: p0\njobs:\n  a:\n    steps:\n      - id: s\n        run: echo hi\n"
NEXT = re.compile(r'href="\?([^"]*after=[0-9a-f]+)" rel="next"')


def project(where: Path, runs: int) -> Path:
    """A git project with ``runs`` run records, laid out by the real records code."""
    from conveyor.domain.states import RunStatus
    from conveyor.metadata.lite import open_lite
    from conveyor.metadata.lite.repository import _encoded
    from conveyor.metadata.records import RunRecord
    from conveyor.metadata.rows import run_row

    where.mkdir()
    (where / "conveyor.yml").write_text(PIPELINE)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=where, check=True)
    subprocess.run(
        ["git", "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "bench"],
        cwd=where,
        check=True,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=where, check=True, capture_output=True, text=True
    ).stdout.strip()
    path = where / ".conveyor" / "conveyor.db"
    path.parent.mkdir()
    open_lite(path).close()
    start = time.time() - runs
    rows = [
        _encoded(
            run_row(
                RunRecord(
                    id=f"{i:012x}",
                    pipeline=f"p{i % 3}",
                    status=(RunStatus.SUCCEEDED, RunStatus.FAILED)[i % 7 == 0],
                    commit=commit,
                    dirty=False,
                    created_at=start + i,
                    started_at=start + i,
                    ended_at=start + i + 1,
                    trigger=("manual", "schedule", "push")[i % 3],
                )
            )
        )
        for i in range(runs)
    ]
    columns = list(rows[0])
    quoted = ", ".join(f'"{c}"' for c in columns)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO runs ({quoted}) VALUES ({', '.join('?' * len(columns))})",
            [tuple(r[c] for c in columns) for r in rows],
        )
    return where


def timed(client: httpx.Client, url: str, repeat: int) -> float:
    times = []
    client.get(url)  # warm: the process's first request imports the templates
    for _ in range(repeat):
        began = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text[:300]
    return statistics.median(times)


def deep(client: httpx.Client, url: str, pages: int, query: str = "") -> str:
    """The URL of the page ``pages`` pages after the first (following "Older runs")."""
    for _ in range(pages):
        found = NEXT.search(client.get(f"{url}?{query}").text)
        assert found, "no next page"
        query = found.group(1).replace("&amp;", "&")
    return f"{url}?{query}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = project(Path(tmp) / "small", 100), project(Path(tmp) / "big", args.runs)
        with serve_ui(small) as ref_url, httpx.Client(timeout=60) as client:
            reference = timed(client, ref_url, args.repeat)
        with serve_ui(big) as url, httpx.Client(timeout=60) as client:
            last_after = f"{1:012x}"  # the page after the second-oldest run: the last one
            cases = {
                "first page": url,
                "100 pages deep": deep(client, url, 100),
                "last page": f"{url}?after={last_after}",
                "status=failed": f"{url}?status=failed",
                "pipeline=p1, 100 pages deep": deep(client, url, 100, "pipeline=p1"),
                "trigger=schedule": f"{url}?trigger=schedule",
            }
            figures = {name: timed(client, case, args.repeat) for name, case in cases.items()}
    print(f"runs list of conveyor ui, {args.runs:,} runs (median of {args.repeat})")
    print(f"  reference: first page of 100 runs  {reference * 1000:7.1f} ms")
    for name, seconds in figures.items():
        print(f"  {name:<30} {seconds * 1000:7.1f} ms  {seconds / reference:5.2f}x reference")
    print(json.dumps({"reference_s": reference, **figures}))


if __name__ == "__main__":
    main()
