"""``conveyor server --http-processes N``: several processes serve one port, and each of
them checks every token on every request, accepts the pushes' hooks and queues runs."""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, conveyor, git, make_server, run_ids

pytestmark = pytest.mark.integration
PIPELINE = "jobs:\n  a:\n    steps:\n      - run: echo hi\n        cache: false\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    yield srv
    srv.stop()


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux's /proc)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        if text.split():
            return [int(p) for p in text.split()]
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no children")


def owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if local == server_port and remote == client_port:
            inode = fields[9]
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def get(conn: http.client.HTTPConnection, path: str, token: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_two_http_processes_serve_runs_and_refuse_a_revoked_token_at_once(
    repo: Repo, server: Server
) -> None:
    proc = server.start(extra=("--http-processes", "2"))
    pids = children(proc.pid)
    assert len(pids) == 2
    repo.pipeline(PIPELINE)
    queued = []
    for i in range(4):  # each push's hook reaches either process: every one queues its run
        repo.commit(f"c{i}")
        out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
        assert len(run_ids(out)) == 1, out
        queued += run_ids(out)
    for run_id in queued:
        assert server.wait_run(run_id)["status"] == "succeeded"
    path = f"/api/v1/projects/demo/runs/{queued[-1]}"
    token = server.tokens["viewer"]
    served: dict[int, http.client.HTTPConnection] = {}
    for _ in range(200):  # new connections until each process holds one
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.connect()
        who = owner(server.port, conn.sock.getsockname()[1], pids)
        if who is None or who in served:
            conn.close()
            continue
        served[who] = conn
        if len(served) == len(pids):
            break
    assert sorted(served) == sorted(pids)
    bodies = set()
    for conn in served.values():
        status, body = get(conn, path, token)
        assert status == 200, body
        bodies.add(body)
    assert len(bodies) == 1  # the same run, the same JSON, from either process
    conveyor(*server.admin_args(), "revoke-tokens", "viewer")
    for conn in served.values():  # the same keep-alive connections, right after
        status, body = get(conn, path, token)
        assert status == 401 and b"not valid" in body
        conn.close()


def test_one_http_process_refuses_a_token_revoked_by_the_admin_commands_at_once(
    server: Server,
) -> None:
    """A single process keeps who a token is (here for ten minutes, so that a kept answer
    cannot expire on its own); the admin command, another process, marks its write in the
    data directory's stamp, which the next request reads."""
    server.start(workers=0, extra=("--keep-answers", "600"))
    token = server.tokens["viewer"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    path = "/api/v1/projects/demo/runs"
    try:
        for _ in range(2):  # the second answer comes from what the first read kept
            status, body = get(conn, path, token)
            assert status == 200, body
        conveyor(*server.admin_args(), "revoke-tokens", "viewer")
        status, body = get(conn, path, token)  # the same connection, right after
        assert status == 401 and b"not valid" in body, body
    finally:
        conn.close()


def test_http_processes_must_be_at_least_one(repo: Repo, server: Server) -> None:
    result = repo.run(*server.admin_args(), "--http-processes", "0")
    assert result.code == 2 and "--http-processes" in result.err
    assert "Traceback" not in result.err


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_when_one_http_process_dies_the_server_stops_and_exits_1(server: Server) -> None:
    proc = server.start(workers=0, extra=("--http-processes", "2"))
    first, second = children(proc.pid)
    os.kill(first, signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    deadline = time.monotonic() + 30
    while Path(f"/proc/{second}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # reaped by the server before it exited
    assert not Path(f"/proc/{second}").exists()
