"""The Craft API's access tokens live in the server database: the unmodified SDK's token,
issued by one of two HTTP processes, is accepted by the other, by a restarted server, and
by nobody once the API token it came from is deleted."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.craft_oracle import DRIVER, VERSIONS, oracle_python
from tests.integration.server_support import Server, conveyor, make_server
from tests.integration.test_server_processes import children, get, owner

pytestmark = pytest.mark.integration
TWO = ("--http-processes", "2")
ME = "/craft/demo/api/v1/users/me"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    yield srv
    srv.stop()
    print(srv.logs[-6000:])  # shown when a test fails


def one_connection_each(server: Server, pids: list[int]) -> dict[int, http.client.HTTPConnection]:
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
    return served


def wait_for(path: Path, driver: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 300  # the first use builds the SDK's environment
    while not path.exists():
        assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
        assert time.monotonic() < deadline, f"the SDK never reached {path.name}"
        time.sleep(0.05)
    return path.read_text(encoding="utf-8")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_an_sdk_token_works_on_every_process_after_a_restart_until_revoked(
    server: Server, tmp_path: Path
) -> None:
    proc = server.start(workers=0, extra=TWO)
    given = {
        "url": f"{server.url}/craft/demo",
        "token": server.tokens["member"],
        "tmp": str(tmp_path),
    }
    driver = subprocess.Popen(
        [str(oracle_python(VERSIONS[0])), str(DRIVER), "tokens", json.dumps(given)],
        cwd=tmp_path,
        env={**os.environ, "SDK_VERBOSE_LOG": "false", "PYTHONPATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        token = wait_for(tmp_path / "issued.ready", driver)  # one process issued it
        for conn in one_connection_each(server, children(proc.pid)).values():
            status, body = get(conn, ME, token)
            assert status == 200, body
            conn.close()
        server.stop()
        proc = server.start(workers=0, extra=TWO)
        (tmp_path / "issued.go").touch()
        wait_for(tmp_path / "restarted.ready", driver)
        conveyor(*server.admin_args(), "revoke-tokens", "member")
        served = one_connection_each(server, children(proc.pid))
        for conn in served.values():  # every process refuses it at once
            status, body = get(conn, ME, token)
            assert status == 401 and b"revoked" in body, body
            conn.close()
        (tmp_path / "restarted.go").touch()
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err[-4000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["me"] == seen["after_restart"] == "member"
    assert seen["same_token"]  # the restarted server took the token it had issued
    assert seen["revoked"]["status"] == 401
    assert "revoked (its SDK token was deleted)" in seen["revoked"]["message"]
    assert seen["refresh"]["status"] == 401
    assert "not an API token" in seen["refresh"]["message"]
