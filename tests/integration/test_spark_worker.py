"""The Spark task's step runner without Spark: a socket pair stands for the driver.

``python:`` steps run in a fork of the task's interpreter (no new interpreter per datum);
they must behave as the command run by ``/bin/sh`` would: same result bytes, same exit
codes, the traceback and the prints in the log, and cancel by process group.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conveyor.executors.base import Invocation
from conveyor.executors.spark import forked, wire, worker
from conveyor.executors.spark.book import Book
from conveyor.executors.spark.channel import Channel
from conveyor.plan.datums import PYTHON, Datum, python_command

pytestmark = pytest.mark.integration

MODULE = """\
import os, sys, time

def size(path):
    print("sizing", path, os.environ.get("GREETING"))
    return {"bytes": os.path.getsize(path), "cwd_is_project": os.getcwd() == os.environ["PWD"]}

def boom(path):
    raise ValueError("no luck with " + path)

def leave(path):
    sys.exit(3)

def sleep(path):
    print("sleeping", flush=True)
    time.sleep(60)
"""


class Driver:
    """Reads what the task sends: the log, until the task's end closes."""

    def __init__(self) -> None:
        self.task, self.driver = socket.socketpair()
        self.log = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                header = wire.recv(self.driver)
                if header.get("t") == "log":
                    self.log += wire.recv_exact(self.driver, int(header["size"]))
        except (wire.DriverGone, OSError):
            return

    def cancel_after(self, seconds: float) -> None:
        def later() -> None:
            time.sleep(seconds)
            wire.send(self.driver, {"t": "cancel"})

        threading.Thread(target=later, daemon=True).start()

    def close(self) -> str:
        self.task.close()
        self.thread.join(10)
        self.driver.close()
        return self.log.decode()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    work = tmp_path / "scratch" / "work"
    (work / "fn").mkdir(parents=True)
    (work / "fn" / "steps.py").write_text(MODULE)
    (work / "d.txt").write_text("12345")
    return work


def _execute(project: Path, command: str, driver: Driver) -> tuple[int, str | None]:
    order = {"command": command, "env": {"GREETING": "hi"}, "grace": 1.0}
    return worker._execute(driver.task, order, str(project), str(project.parent))


def _command(function: str) -> str:
    return python_command(f"fn.steps:{function}", "out/r.json", Datum("d.txt", "d.txt"))


def test_the_worker_knows_the_python_step_prefix() -> None:
    assert f"{PYTHON} -B -c " == forked._PYTHON_PREFIX
    command = _command("size")
    env = {"CONVEYOR_PYTHON": sys.executable}
    assert forked.python_call(command, env, {})[1:] == ["fn.steps:size", "out/r.json", "d.txt"]
    assert forked.python_call(command, env, {"PYTHONPATH": "x"}) is None
    assert forked.python_call(command, {"CONVEYOR_PYTHON": "/other/python"}, {}) is None
    assert forked.python_call(command + "; rm -rf out", env, {}) is None
    assert forked.python_call("echo hi", env, {}) is None


def test_a_forked_python_step_writes_what_the_shell_would(project: Path) -> None:
    driver = Driver()
    code, note = _execute(project, _command("size"), driver)
    log = driver.close()
    assert (code, note) == (0, None)
    assert "sizing d.txt hi" in log
    forked = (project / "out" / "r.json").read_bytes()
    (project / "out" / "r.json").unlink()
    env = {**os.environ, "GREETING": "hi", "PWD": str(project)}
    shell = subprocess.run(["/bin/sh", "-c", _command("size")], cwd=project, env=env)
    assert shell.returncode == 0
    assert (project / "out" / "r.json").read_bytes() == forked
    assert b'"bytes": 5' in forked and b'"cwd_is_project": true' in forked
    assert not (project / "fn" / "__pycache__").exists()


def test_an_exception_is_exit_code_1_with_the_traceback_in_the_log(project: Path) -> None:
    driver = Driver()
    code, _ = _execute(project, _command("boom"), driver)
    log = driver.close()
    assert code == 1
    assert "Traceback (most recent call last)" in log
    assert "ValueError: no luck with d.txt" in log
    assert not (project / "out" / "r.json").exists()


def test_sys_exit_gives_its_code(project: Path) -> None:
    driver = Driver()
    code, _ = _execute(project, _command("leave"), driver)
    driver.close()
    assert code == 3


def test_cancel_stops_a_forked_step(project: Path) -> None:
    driver = Driver()
    driver.cancel_after(1.0)
    started = time.monotonic()
    code, note = _execute(project, _command("sleep"), driver)
    log = driver.close()
    assert time.monotonic() - started < 10
    assert (code, note) == (128 + 15, "cancelled")
    assert "sleeping" in log


class CountingChannel(Channel):
    """The driver's channel, counting the connections tasks open."""

    def __init__(self, book: Book, scratch: Path) -> None:
        super().__init__(book, "token", 1.0, str(scratch))
        self.connections = 0

    def _serve(self, conn: socket.socket) -> None:
        self.connections += 1
        super()._serve(conn)


def _invocation(project: Path, n: int) -> Invocation:
    command = f'mkdir -p out && echo {n} > out/{n}.txt && echo "datum {n}"'
    if n == 2:
        command = 'echo "datum 2 fails"; exit 3'
    return Invocation(
        key=f"run/d{n}/1",
        command=command,
        env={},
        workdir=project,
        log_path=project / "logs" / f"{n}.log",
        outputs=(f"out/{n}.txt",),
    )


def test_a_pack_runs_over_one_connection_each_invocation_on_its_own(tmp_path: Path) -> None:
    project, scratch = tmp_path / "project", tmp_path / "scratch"
    (project / "logs").mkdir(parents=True)
    scratch.mkdir()
    book = Book(cancel_wait=5.0)
    channel = CountingChannel(book, scratch)
    port = channel.open("127.0.0.1")
    try:
        invocations = [_invocation(project, n) for n in (1, 2, 3)]
        sids = [book.add(i) for i in invocations]
        assert book.take_buffer("group") == sids
        done = worker.run_pack(("127.0.0.1", port), "token", ",".join(sids))
        keys = [i.key for i in invocations]
        completions = {}
        for _ in range(100):
            completions.update({c.key: c for c in book.wait(keys, 0.1)})
            if len(completions) == len(keys):
                break
        # a Spark retry of the task: every invocation already finished is skipped
        again = worker.run_pack(("127.0.0.1", port), "token", ",".join(sids))
    finally:
        channel.close()
    assert done == [(sid, "ran") for sid in sids]
    assert again == [(sid, "skip") for sid in sids]
    assert channel.connections == 2  # one per pack, not one per invocation
    assert [(completions[k].state, completions[k].exit_code) for k in keys] == [
        ("exited", 0),
        ("exited", 3),
        ("exited", 0),
    ]
    assert (project / "out" / "1.txt").read_text() == "1\n"
    assert not (project / "out" / "2.txt").exists()
    assert (project / "out" / "3.txt").read_text() == "3\n"
    assert [(project / "logs" / f"{n}.log").read_text() for n in (1, 2, 3)] == [
        "datum 1\n",
        "datum 2 fails\n",
        "datum 3\n",
    ]
    assert list(scratch.iterdir()) == []  # every scratch directory removed by the end


# -- one child per pack for python: datums ---------------------------------------------
PACK_MODULE = """\
import os, sys, time

SEEN = []  # module state: carried from one datum to the next in one child

def step(path):
    n = int(open(path).read())
    SEEN.append(n)
    print(f"datum {n} after {SEEN[:-1]} in {os.getcwd() == os.environ['PWD']}", flush=True)
    if n == 2 and os.environ.get("MODE") == "crash":
        os._exit(7)
    if n == 2 and os.environ.get("MODE") == "exit":
        sys.exit(4)
    if n == 2 and os.environ.get("MODE") == "sleep":
        time.sleep(60)
    return {"n": n, "seen": SEEN}
"""


def _python_invocation(project: Path, n: int, mode: str, options: dict[str, str]) -> Invocation:
    return Invocation(
        key=f"run/p{n}/1",
        command=python_command("fn.pack:step", f"out/{n}.json", Datum(f"d{n}.txt", f"d{n}.txt")),
        env={"CONVEYOR_PYTHON": sys.executable, "MODE": mode},
        workdir=project,
        log_path=project / "logs" / f"{n}.log",
        inputs=("fn/pack.py", f"d{n}.txt"),
        outputs=(f"out/{n}.json",),
        options=options,
    )


def _run_python_pack(
    tmp_path: Path, mode: str, options: dict[str, str] | None = None, cancel: int | None = None
) -> tuple[Path, dict[int, tuple[str, int | None]], Path]:
    """Three python: datums in one pack over a real channel; their completions."""
    project, scratch = tmp_path / "project", tmp_path / "scratch"
    (project / "fn").mkdir(parents=True)
    (project / "logs").mkdir()
    (project / "fn" / "pack.py").write_text(PACK_MODULE)
    scratch.mkdir()
    for n in (1, 2, 3):
        (project / f"d{n}.txt").write_text(f"{n}\n")
    book = Book(cancel_wait=5.0)
    channel = Channel(book, "token", 1.0, str(scratch))
    port = channel.open("127.0.0.1")
    invocations = {n: _python_invocation(project, n, mode, options or {}) for n in (1, 2, 3)}
    completions: dict[str, object] = {}
    try:
        sids = [book.add(invocations[n]) for n in (1, 2, 3)]
        book.take_buffer("group")
        if cancel is not None:  # the runner's timeout: a cancel once the datum runs

            def later() -> None:
                key = invocations[cancel].key
                while not book.running([key]):
                    time.sleep(0.05)
                time.sleep(1.0)
                for stop in book.cancel([key])[0]:
                    stop()

            threading.Thread(target=later, daemon=True).start()
        worker.run_pack(("127.0.0.1", port), "token", ",".join(sids))
        keys = [i.key for i in invocations.values()]
        for _ in range(200):
            completions.update({c.key: c for c in book.wait(keys, 0.1)})
            if len(completions) == len(keys):
                break
    finally:
        channel.close()
    found = {}
    for n, invocation in invocations.items():
        done = completions[invocation.key]
        found[n] = (done.state, done.exit_code)  # type: ignore[attr-defined]
    return project, found, scratch


def _seen(project: Path, n: int) -> list[int]:
    import json

    return list(json.loads((project / "out" / f"{n}.json").read_text())["seen"])


def test_a_pack_of_python_datums_shares_one_child_and_its_module_state(tmp_path: Path) -> None:
    project, found, scratch = _run_python_pack(tmp_path, "plain")
    assert found == {1: ("exited", 0), 2: ("exited", 0), 3: ("exited", 0)}
    assert [_seen(project, n) for n in (1, 2, 3)] == [[1], [1, 2], [1, 2, 3]]
    logs = [(project / "logs" / f"{n}.log").read_text() for n in (1, 2, 3)]
    assert logs == [  # each datum's log holds its own output only, from its own directory
        "datum 1 after [] in True\n",
        "datum 2 after [1] in True\n",
        "datum 3 after [1, 2] in True\n",
    ]
    assert list(scratch.iterdir()) == []  # the module's directory kept until the pack ended


def test_isolate_forks_each_datum_afresh(tmp_path: Path) -> None:
    project, found, _ = _run_python_pack(tmp_path, "plain", {"spark.isolate": "true"})
    assert found == {1: ("exited", 0), 2: ("exited", 0), 3: ("exited", 0)}
    assert [_seen(project, n) for n in (1, 2, 3)] == [[1], [2], [3]]


def test_a_datum_that_kills_the_child_fails_alone(tmp_path: Path) -> None:
    project, found, scratch = _run_python_pack(tmp_path, "crash")
    assert found == {1: ("exited", 0), 2: ("exited", 7), 3: ("exited", 0)}
    assert (project / "logs" / "2.log").read_text() == "datum 2 after [1] in True\n"
    assert _seen(project, 3) == [3]  # a fresh child: nothing carried over from the dead one
    assert list(scratch.iterdir()) == []


def test_sys_exit_in_a_pack_gives_its_code_and_the_child_goes_on(tmp_path: Path) -> None:
    project, found, _ = _run_python_pack(tmp_path, "exit")
    assert found == {1: ("exited", 0), 2: ("exited", 4), 3: ("exited", 0)}
    assert _seen(project, 3) == [1, 2, 3]


def test_a_timed_out_datum_ends_its_child_and_the_next_gets_a_fresh_one(tmp_path: Path) -> None:
    project, found, scratch = _run_python_pack(tmp_path, "sleep", cancel=2)
    assert found[1] == ("exited", 0) and found[3] == ("exited", 0)
    assert found[2][0] == "cancelled"
    assert "datum 2 after [1]" in (project / "logs" / "2.log").read_text()
    assert not (project / "out" / "2.json").exists()
    assert _seen(project, 3) == [3]
    assert list(scratch.iterdir()) == []
