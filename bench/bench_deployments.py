"""Deployment calls: a ``low_latency`` endpoint calling a trivial function under
concurrent clients, and ``elastic`` calls (a run each) to their outputs.

    python bench/bench_deployments.py [--clients 20] [--calls 4000] [--elastic 20]
                                      [--http-processes N]

Starts a real ``conveyor server`` (SQLite, bubblewrap, two in-process workers) on
127.0.0.1 in a temporary directory. Each figure comes with a reference measured in the
same run: ``GET /api/v1/health`` from the same clients (the HTTP stack alone). Targets
(issue 15): low_latency p50 < 20 ms, p99 < 100 ms, >= 200 calls/s with 20 clients;
elastic call to outputs p50 < 1 s. It also checks that every call has exactly one
execution record.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server_support import Server, git, make_server  # noqa: E402

PIPELINE = """\
params:
  a: {type: int, default: 1}
  b: {type: int, default: 2}
jobs:
  serve:
    steps:
      - id: add
        python: fn:add
"""
MODULE = "def add(a=1, b=2):\n    return {'sum': a + b}\n"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def hammer(
    url: str, headers: dict[str, str], body: object, clients: int, calls: int
) -> tuple[list[float], float, list[str]]:
    """``calls`` requests from ``clients`` concurrent clients: latencies, wall, ids."""
    import httpx

    latencies: list[float] = []
    ids: list[str] = []
    left = iter(range(calls))

    async def client() -> None:
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            for _ in left:
                started = time.perf_counter()
                answer = (
                    await http.post(url, json=body) if body is not None else await http.get(url)
                )
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text}")
                if body is not None:
                    ids.append(answer.json()["execution_id"])

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started, ids


def report(name: str, latencies: list[float], wall: float) -> None:
    print(
        f"{name:28} p50 {percentile(latencies, 50) * 1000:7.1f} ms  "
        f"p99 {percentile(latencies, 99) * 1000:7.1f} ms  {len(latencies) / wall:7.0f} calls/s"
    )


def setup(server: Server, work: Path) -> None:
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    (work / "fn.py").write_text(MODULE)
    git(work, "add", "-A")
    git(work, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "fn")
    git(work, "push", "-q", server.git_url(), "HEAD:main")
    inputs = [{"name": n, "type": "integer", "required": False} for n in ("a", "b")]
    with server.api("lead") as lead:
        for name, mode in (("fast", "low_latency"), ("runs", "elastic")):
            settings = {"inputs": inputs, "rate_limit": 0, "pool_size": 4}
            settings["max_parallel_executions"] = 64
            created = lead.post(
                "/deployments", json={"name": name, "mode": mode, "settings": settings}
            )
            created.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--elastic", type=int, default=20)
    parser.add_argument("--http-processes", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(Path(tmp), None)
        server.start(workers=2, extra=("--http-processes", str(args.http_processes)))
        try:
            setup(server, Path(tmp) / "work")
            headers = {"Authorization": f"Bearer {server.tokens['member']}"}
            base = f"{server.url}/api/v1/projects/demo/deployments"
            asyncio.run(hammer(f"{base}/fast/call", headers, {"a": 1}, 4, 200))  # warm up
            health, hwall, _ = asyncio.run(
                hammer(f"{server.url}/api/v1/health", {}, None, args.clients, args.calls)
            )
            fast, fwall, ids = asyncio.run(
                hammer(f"{base}/fast/call", headers, {"a": 2, "b": 3}, args.clients, args.calls)
            )
            one, owall, _ = asyncio.run(hammer(f"{base}/fast/call", headers, {"a": 1}, 1, 500))
            report("GET health (reference)", health, hwall)
            report("low_latency, 1 client", one, owall)
            report(f"low_latency, {args.clients} clients", fast, fwall)
            print(
                f"  ratio to health p50: {statistics.median(fast) / statistics.median(health):.1f}x"
            )
            with server.api("viewer") as viewer:
                counts = viewer.get("/deployments/fast").json()["executions"]
            print(f"  executions recorded: {counts}, distinct ids: {len(set(ids))} of {len(ids)}")
            elastic, ewall, _ = asyncio.run(
                hammer(f"{base}/runs/call", headers, {"a": 2}, 1, args.elastic)
            )
            report("elastic, 1 client", elastic, ewall)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
