"""Deployment calls: a ``low_latency`` endpoint calling a trivial function under
concurrent clients, and ``elastic`` calls (a run each) to their outputs.

    python bench/bench_deployments.py [--clients 20] [--rate 200] [--seconds 15]
                                      [--calls 4000] [--elastic 20] [--http-processes N]

Starts a real ``conveyor server`` (SQLite, bubblewrap, two in-process workers) on
127.0.0.1 in a temporary directory. Two loads, both from ``--clients`` keep-alive
HTTP/1.1 connections (a raw asyncio client: an httpx client costs the shared cores
more CPU than the server's own work):

- paced (open loop): the clients together offer ``--rate`` calls/s for ``--seconds``,
  each client on its own schedule (evenly staggered); a call's latency runs from its
  SCHEDULED send time, so a late answer also counts against the calls queued behind it
  (no coordinated omission). This gives the latency target's figures.
- closed loop: each client sends its next call as soon as its last one answers,
  ``--calls`` in all: the maximum throughput (and, by Little's law, p50 ~ clients /
  throughput).

Each load comes with a reference measured in the same run: ``GET /api/v1/health`` from
the same clients (the HTTP stack alone). Targets (issue 15): low_latency p50 < 20 ms,
p99 < 100 ms with 20 clients, >= 200 calls/s; elastic call to outputs p50 < 1 s. It
also checks that every call has exactly one execution record, and prints the load
average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class Target:
    """One request, encoded once: sent as is on every call."""

    host: str
    port: int
    request: bytes

    @classmethod
    def of(cls, url: str, headers: dict[str, str], body: object) -> Target:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        lines = [f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        payload = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        verb = "GET" if body is None else "POST"
        head = f"{verb} {parts.path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in lines)
        return cls(host, port, (head + "\r\n").encode() + payload)


class Connection:
    """One keep-alive HTTP/1.1 connection: a request out, the status and body back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target) -> Connection:
        return cls(*await asyncio.open_connection(target.host, target.port))

    async def send(self, request: bytes) -> bytes:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = LENGTH.search(head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        body = await self.reader.readexactly(int(length.group(1)))
        if head[9:12] != b"200":
            raise RuntimeError(f"{head[9:12].decode()}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.writer.close()


LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


@dataclass
class Load:
    """What one load measured: a latency and an answer per call, and the wall time."""

    latencies: list[float] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0
    """CPU seconds the server process spent meanwhile (all its threads)."""
    workers_cpu: float = 0.0
    """... and its child processes (the warm workers)."""

    def line(self, name: str) -> str:
        ms = [percentile(self.latencies, p) * 1000 for p in (50, 99)]
        rate = len(self.latencies) / self.wall
        line = f"{name:36} p50 {ms[0]:7.1f} ms  p99 {ms[1]:7.1f} ms  {rate:5.0f} calls/s"
        if not self.cpu:
            return line
        cpu = [c / len(self.latencies) * 1000 for c in (self.cpu, self.workers_cpu)]
        return f"{line}  CPU/call: server {cpu[0]:4.2f} ms, workers {cpu[1]:4.2f} ms"

    def ids(self) -> list[str]:
        return [json.loads(a)["execution_id"] for a in self.answers]


async def closed(target: Target, clients: int, calls: int) -> Load:
    """``calls`` requests from ``clients`` connections, each sending its next request
    as soon as its last one answers."""
    load = Load()
    left = iter(range(calls))

    async def client() -> None:
        conn = await Connection.open(target)
        try:
            for _ in left:
                began = time.perf_counter()
                load.answers.append(await conn.send(target.request))
                load.latencies.append(time.perf_counter() - began)
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    load.wall = time.perf_counter() - began
    return load


async def paced(target: Target, clients: int, rate: float, seconds: float) -> Load:
    """``clients`` connections offering ``rate`` requests/s together for ``seconds``:
    client ``i`` sends at ``start + (i / clients + k) * clients / rate`` (k = 0, 1, ...);
    a latency runs from that scheduled time, not from when the request left."""
    load = Load()
    interval = clients / rate
    each = max(1, round(seconds * rate / clients))
    conns = [await Connection.open(target) for _ in range(clients)]
    start = time.perf_counter() + 0.05

    async def client(i: int, conn: Connection) -> None:
        for k in range(each):
            due = start + (i / clients + k) * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            load.answers.append(await conn.send(target.request))
            load.latencies.append(time.perf_counter() - due)

    try:
        await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            conn.close()
    load.wall = time.perf_counter() - start
    return load


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU time so far (Linux ``/proc``) of process ``pid``, and of its
    descendants alive now (the warm workers, inside their sandboxes)."""
    own = _ticks(pid)
    tree, seen = 0, {pid}
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            for child in map(int, task.read_text().split()):
                if child not in seen:
                    seen.add(child)
                    tree += _ticks(child)
                    todo.append(child)
    hz = os.sysconf("SC_CLK_TCK")
    return own / hz, tree / hz


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12])


def run(coroutine: Coroutine[Any, Any, Load], pid: int | None = None) -> Load:
    """On uvloop when installed (the cheaper loop leaves more of the cores to the
    server); with the CPU time server process ``pid`` spent meanwhile."""
    before = cpu_seconds(pid) if pid else (0.0, 0.0)
    try:
        import uvloop
    except ImportError:
        load = asyncio.run(coroutine)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            load = runner.run(coroutine)
    after = cpu_seconds(pid) if pid else (0.0, 0.0)
    load.cpu, load.workers_cpu = after[0] - before[0], after[1] - before[1]
    return load


def loadavg() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


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
    parser.add_argument("--rate", type=float, default=200.0, help="paced: calls/s offered")
    parser.add_argument("--seconds", type=float, default=15.0, help="paced: how long")
    parser.add_argument("--calls", type=int, default=4000, help="closed loop: calls in all")
    parser.add_argument("--elastic", type=int, default=20)
    parser.add_argument("--http-processes", type=int, default=1)
    args = parser.parse_args()
    clients = args.clients
    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(Path(tmp), None)
        pid = server.start(workers=2, extra=("--http-processes", str(args.http_processes))).pid
        try:
            setup(server, Path(tmp) / "work")
            print(f"server pid {pid}; before: {loadavg()}", flush=True)
            auth = {"Authorization": f"Bearer {server.tokens['member']}"}
            base = f"{server.url}/api/v1/projects/demo/deployments"
            health = Target.of(f"{server.url}/api/v1/health", {}, None)
            fast = Target.of(f"{base}/fast/call", auth, {"a": 2, "b": 3})
            run(closed(fast, 4, 200))  # warm up
            loads = {
                f"paced {args.rate:.0f}/s: GET health (ref)": run(
                    paced(health, clients, args.rate, args.seconds), pid
                ),
                f"paced {args.rate:.0f}/s: low_latency": run(
                    paced(fast, clients, args.rate, args.seconds), pid
                ),
                f"closed, {clients} clients: GET health (ref)": run(
                    closed(health, clients, args.calls), pid
                ),
                f"closed, {clients} clients: low_latency": run(
                    closed(fast, clients, args.calls), pid
                ),
                "closed, 1 client: low_latency": run(closed(fast, 1, 500), pid),
            }
            print(f"after: {loadavg()}")
            for name, load in loads.items():
                print(load.line(name))
            ids = [i for name, load in loads.items() if "low_latency" in name for i in load.ids()]
            with server.api("viewer") as viewer:
                counts = viewer.get("/deployments/fast").json()["executions"]
            print(f"  executions recorded: {counts} (with 200 warm-up calls), ", end="")
            print(f"distinct ids: {len(set(ids))} of {len(ids)}")
            runs = Target.of(f"{base}/runs/call", auth, {"a": 2})
            print(run(closed(runs, 1, args.elastic)).line("elastic, 1 client"))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
