"""A real Conveyor server for tests: its own data directory, a free port on 127.0.0.1,
users with each role on a project, and helpers to push and wait.

Needs only the ``[server]`` extra (no pytest): ``bench/bench_server.py`` uses it too.
The ``postgres_url`` fixture is in ``conftest.py``."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import ports

CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]
ROLES = ("viewer", "member", "lead")
START_WAIT = 90  # seconds a test server may take to answer its health route


def free_port() -> int:
    return ports.free_port()  # this test process's own share of the ports


def conveyor(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [*CONVEYOR, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class Server:
    data: Path
    port: int
    database: str | None
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: str = ""
    """What the stopped processes wrote to stderr."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def git_url(self, project: str = "demo", who: str = "member") -> str:
        return f"http://{who}:{self.tokens[who]}@127.0.0.1:{self.port}/git/{project}.git"

    def admin_args(self) -> list[str]:
        args = ["server", "--data", str(self.data)]
        return [*args, "--database", self.database] if self.database else args

    def start(self, workers: int = 1, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        if workers and "--sandbox" not in extra:
            need_bwrap()
        for _ in range(3):  # a port taken between its pick and the bind: another port
            proc = self._start(workers, extra)
            if proc is not None:
                return proc
            self.port = free_port()
        raise AssertionError("the server found its port taken three times")

    def _start(self, workers: int, extra: tuple[str, ...]) -> subprocess.Popen[str] | None:
        """The started server, or None when its port was taken (by a process outside the
        tests' port shares, such as an engine's own socket)."""
        args = [*self.admin_args(), "--port", str(self.port), "--workers", str(workers), *extra]
        proc = subprocess.Popen(
            [*CONVEYOR, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self.procs.append(proc)
        # generous: the wait ends at the first answer, and a loaded machine (two test
        # processes beside the engines) can take tens of seconds to start a server
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                self.procs.remove(proc)
                with proc.stderr or contextlib.nullcontext():
                    said = proc.stderr.read() if proc.stderr else ""
                if "address already in use" in said:
                    return None
                raise AssertionError(said)
            time.sleep(0.05)
        self.stop()  # a fixture that started it in its setup never reaches its teardown
        raise AssertionError(f"the server did not start in {START_WAIT} s")

    def start_worker(self, env: dict[str, str] | None = None, *extra: str) -> subprocess.Popen[str]:
        if "--sandbox" not in extra:
            need_bwrap()
        args = ["worker", "--data", str(self.data), *extra]
        if self.database:
            args += ["--database", self.database]
        proc = subprocess.Popen(
            [*CONVEYOR, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                self.logs += proc.stderr.read()
                proc.stderr.close()
        self.procs.clear()

    def api(self, who: str = "lead") -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1/projects/demo",
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=30,
        )

    def wait_run(self, run_id: str, timeout: float = 60, until: tuple[str, ...] = ()) -> Any:
        done = until or ("succeeded", "failed", "cancelled", "interrupted")
        deadline = time.monotonic() + timeout
        with self.api() as client:
            while time.monotonic() < deadline:
                run = client.get(f"/runs/{run_id}").json()
                if run["status"] in done:
                    return run
                time.sleep(0.1)
        raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")


def need_bwrap() -> None:
    """The server runs its steps under bubblewrap: without it they would fail."""
    if shutil.which("bwrap") is not None:
        return
    message = "bubblewrap is not installed; run scripts/engines/bwrap.sh up"
    try:
        from tests.engines import engine_missing
    except ImportError:  # the benchmark, without pytest
        raise RuntimeError(message) from None
    engine_missing("bwrap", message)


def make_server(tmp_path: Path, database: str | None) -> Server:
    """A data directory with project ``demo``, an admin, a user per role and an outsider
    (set up in-process: the CLI's own commands have their own test)."""
    from conveyor.server.api_projects import add_project
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.state import ServerState

    server = Server(tmp_path / "server-data", free_port(), database)
    config = ServerConfig(data=server.data, database=database)
    server.data.mkdir(parents=True)
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    accounts = state.db.accounts
    server.tokens["admin"] = accounts.add_user("admin", admin=True)[1]
    add_project(state, "demo")
    for who in (*ROLES, "outsider"):
        server.tokens[who] = accounts.add_user(who)[1]
    for role in ROLES:
        accounts.grant("demo", role, role)
    state.db.close()
    return server


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_ids(push_output: str) -> list[str]:
    """Run ids from the ``remote: conveyor: run ID queued`` lines of a push."""
    ids = []
    for line in push_output.splitlines():
        words = line.split()
        if "queued" in words and "run" in words:
            ids.append(words[words.index("run") + 1])
    return ids
