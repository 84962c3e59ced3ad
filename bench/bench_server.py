"""Server speed: push-to-first-step-started latency, and GET run status under load.

    python bench/bench_server.py [--pushes 30] [--clients 50] [--seconds 20] [--database URL]
                                 [--http-processes N]

Starts a real ``conveyor server`` (SQLite, local executor, one in-process worker) on
127.0.0.1 in a temporary directory. Each figure is printed with a reference measured
in the same run: a plain ``git push`` that queues nothing (the git part of the
latency), and ``GET /api/v1/health`` (the HTTP stack without the database).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server_support import Server, git, make_server, run_ids  # noqa: E402

PIPELINE = "jobs:\n  a:\n    steps:\n      - run: echo hi\n        cache: false\n"
IGNORED = "on:\n  push: {branches: [main]}\n" + PIPELINE


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def first_step_started(server: Server, run_id: str) -> float:
    deadline = time.monotonic() + 60
    with server.api() as api:
        while time.monotonic() < deadline:
            run = api.get(f"/runs/{run_id}").json()
            if run["status"] not in ("queued", "running"):
                starts = [s["started_at"] for s in run["steps"] if s["started_at"]]
                from datetime import datetime

                return min(datetime.fromisoformat(s).timestamp() for s in starts)
            time.sleep(0.05)
    raise RuntimeError(f"run {run_id} did not finish")


def bench_push(server: Server, work: Path, pushes: int) -> tuple[list[float], list[float]]:
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "b@e")
    git(work, "config", "user.name", "B")
    (work / "conveyor.yml").write_text(IGNORED)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "ignored branch pipeline")
    url = server.git_url()
    git(work, "push", "-q", url, "main")
    plain = []  # pushes to a branch that queues no run: the cost of git alone
    for i in range(pushes):
        git(work, "commit", "-q", "--allow-empty", "-m", f"p{i}")
        started = time.time()
        git(work, "push", "-q", url, "HEAD:refs/heads/plain")
        plain.append(time.time() - started)
    (work / "conveyor.yml").write_text(PIPELINE)
    git(work, "commit", "-qam", "run on every push")
    latencies = []
    for i in range(pushes + 1):
        git(work, "commit", "-q", "--allow-empty", "-m", f"r{i}")
        started = time.time()
        out = git(work, "push", url, "HEAD:main").stderr
        run_id = run_ids(out)[0]
        latency = first_step_started(server, run_id) - started
        if i:  # the first run warms the worker's imports
            latencies.append(latency)
    return latencies, plain


async def _client(host: str, port: int, request: bytes, stop: float, times: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection sending ``request`` until ``stop``. A raw
    asyncio client: httpx at 50 connections tops out below the server's rate."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if status != b"200" or length is None:
                raise RuntimeError(f"unexpected response: {head[:200]!r}")
            await reader.readexactly(int(length.group(1)))
            times.append(time.perf_counter() - began)
    finally:
        writer.close()


async def _load(url: str, token: str, clients: int, seconds: float) -> list[float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    times: list[float] = []
    stop = time.monotonic() + seconds
    await asyncio.gather(*(_client(host, port, request, stop, times) for _ in range(clients)))
    return times


def bench_get(server: Server, run_id: str, clients: int, seconds: float) -> None:
    for name, url in (
        ("GET /api/v1/health (reference)", f"{server.url}/api/v1/health"),
        ("GET run status", f"{server.url}/api/v1/projects/demo/runs/{run_id}"),
    ):
        times = asyncio.run(_load(url, server.tokens["viewer"], clients, seconds))
        rate = len(times) / seconds
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        print(
            f"{name:34s} {clients} clients {seconds:.0f}s: {rate:7.1f} req/s, "
            f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--http-processes", type=int, default=1, help="the server's option")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        server = make_server(Path(tmp), args.database)
        processes = args.http_processes
        server.start(extra=("--http-processes", str(processes)) if processes > 1 else ())
        try:
            latencies, plain = bench_push(server, Path(tmp) / "work", args.pushes)
            med, p95 = statistics.median(latencies), percentile(latencies, 95)
            ref = statistics.median(plain)
            print(
                f"push -> first step started ({len(latencies)} pushes): median "
                f"{med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (target < 300 ms)"
            )
            print(
                f"plain git push, no run (reference): median {ref * 1000:.0f} ms; "
                f"ratio {med / ref:.2f}x"
            )
            with server.api() as api:
                run_id = api.get("/runs").json()["runs"][0]["id"]
            bench_get(server, run_id, args.clients, args.seconds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
