"""The Spark task: runs a pack of step invocations on an executor, talking to the driver.

This module is shipped to the workers by value (cloudpickle), so it uses the standard
library only and the workers need no Conveyor install. A task connects to the driver's
channel once, and for each invocation of its pack says which one it is about to run,
receives the command, environment and input files, runs ``/bin/sh -e -c`` in a private
scratch directory, streams the log back while the step runs, obeys a ``cancel`` message,
and at the end sends the declared outputs and the exit code, and goes on with the next
(the driver stores them without holding up the task).

The wire format is in ``wire``, ``python:`` steps run in a fork (``forked``); both are
shipped by value with this module.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from conveyor.executors.spark.forked import Child, Forked, Turn, python_call
from conveyor.executors.spark.wire import (
    CHUNK,
    DriverGone,
    Header,
    recv,
    recv_file,
    safe_relative,
    send,
    send_file,
)

_CONNECT_TIMEOUT = 30.0
# The step runs in its own session under this wrapper, which leaves a watcher in the
# step's process group: it reads the pipe on fd 0 that only this task holds open, and when
# the task dies (its Python worker or executor killed) it stops the whole group and
# removes the scratch directory, so nothing outlives the task. Then the wrapper becomes
# ``/bin/sh -e -c COMMAND`` ($1), in the same process.
_WRAPPER = (
    "exec 3<&0 </dev/null; "
    '{ trap "" TERM; read _ <&3; kill -TERM 0; rm -rf "$2"; kill -KILL 0; } & '
    'exec /bin/sh -e -c "$1" 3<&-'
)


# -- the task ------------------------------------------------------------------------
def run_pack(address: tuple[str, int], token: str, pack: str) -> list[tuple[str, str]]:
    """The function each Spark task runs: the invocations of its pack (``"3,4,5"``, see
    ``packing``) one after the other over one connection, each claimed, logged and
    reported on its own; one that fails or breaks the connection does not stop its
    task-mates (the next one connects again). Scratch directories are removed by a
    thread while the next invocation runs (removal waits on the disk, not the CPU), all
    of them before the task returns. Returns ``(sid, what happened)`` for each."""
    done = []
    where = whereabouts()
    sock: socket.socket | None = None
    sweeper = _Sweeper()
    children = _Children(sweeper)
    try:
        for sid in pack.split(","):
            try:
                if sock is None:
                    sock = _connect(address)
                outcome = _run_one(sock, token, sid, where, sweeper, children)
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            done.append((sid, outcome))
            if outcome not in ("ran", "skip") and sock is not None:
                sock.close()  # where the conversation stood is unknown: start afresh
                sock = None
    finally:
        if sock is not None:
            sock.close()
        children.retire()
        sweeper.finish()
    return done


def run_task(address: tuple[str, int], token: str, sid: str) -> tuple[str, str]:
    """One invocation alone: a pack of one."""
    return run_pack(address, token, sid)[0]


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=_CONNECT_TIMEOUT)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small messages, no waits
    return sock


def _run_one(
    sock: socket.socket,
    token: str,
    sid: str,
    where: dict[str, object],
    sweeper: _Sweeper,
    children: _Children,
) -> str:
    """Claim ``sid`` on the pack's connection and run it; what happened."""
    send(sock, {"t": "hello", "token": token, "sid": sid, "where": where})
    order = recv(sock)
    while order.get("t") == "cancel":  # for the previous invocation, which ended first
        order = recv(sock)
    if order.get("t") != "run":
        return str(order.get("t"))
    scratch = tempfile.mkdtemp(prefix="conveyor-step-", dir=order.get("scratch") or None)
    try:
        code, note = _run_claimed(sock, order, scratch, children)
    except DriverGone:
        return "driver-gone"
    except Exception as exc:
        with contextlib.suppress(OSError):
            send(sock, {"t": "error", "message": f"{type(exc).__name__}: {exc}"})
        return "error"
    finally:
        if not children.holds(scratch):
            sweeper.remove(scratch)
    # the last message: the driver stores what came before it, this task need not wait
    send(sock, {"t": "exit", "code": code, "note": note})
    return "ran"


class _Children:
    """The pack's child for its ``python:`` datums (``forked.Child``), started at the
    first one and again after a datum ended it; its kept scratch directories are swept
    when it ends."""

    def __init__(self, sweeper: _Sweeper) -> None:
        self._sweeper = sweeper
        self._child: Child | None = None

    def run(self, call: list[str], work: str, env: dict[str, str], out: int, scratch: str) -> Turn:
        """Hand the datum to the child (a fresh one if it is gone or cannot take it)."""
        if self._child is not None:
            if self._child.living():
                with contextlib.suppress(OSError):  # it ended just now: a new one below
                    return self._child.run(call, work, env, out, scratch)
            self.retire()
        self._child = Child.start()
        return self._child.run(call, work, env, out, scratch)

    def holds(self, scratch: str) -> bool:
        return self._child is not None and scratch in self._child.kept

    def retire(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop()
            for scratch in child.kept:
                self._sweeper.remove(scratch)


class _Sweeper:
    """Removes scratch directories in one thread, in order; ``finish`` waits for all."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def remove(self, path: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        self._queue.put(path)

    def finish(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (path := self._queue.get()) is not None:
            shutil.rmtree(path, ignore_errors=True)


def whereabouts() -> dict[str, object]:
    """Where this task runs, for the step page: its host, the Spark task's ids, and its
    executor (a standalone worker names it only in the log URLs it gives the executor)."""
    where: dict[str, object] = {"host": socket.gethostname()}
    query = urllib.parse.urlparse(os.environ.get("SPARK_LOG_URL_STDERR", "")).query
    executor = urllib.parse.parse_qs(query).get("executorId")
    if executor:
        where["executor"] = executor[0]
    try:  # the workers run pyspark's own worker, so it is there; not in a unit test
        # (imported by name: the package is an optional extra, absent where mypy runs)
        context = importlib.import_module("pyspark").TaskContext.get()
    except ImportError:
        context = None
    if context is not None:
        where["stage"] = context.stageId()
        where["partition"] = context.partitionId()
        where["attempt"] = context.attemptNumber()
        where["task"] = context.taskAttemptId()
    return where


def _run_claimed(
    sock: socket.socket, order: Header, scratch: str, children: _Children | None = None
) -> tuple[int, str | None]:
    work = os.path.join(scratch, "work")
    os.mkdir(work)
    for item in order["files"]:
        target = os.path.join(work, item["path"])
        if not safe_relative(item["path"]):
            raise ValueError(f"unsafe input path {item['path']!r}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        recv_file(sock, target, int(item["size"]), int(item["mode"]))
    code, note = _execute(sock, order, work, scratch, children)
    for rel in order["outputs"]:
        if safe_relative(rel):
            _send_output(sock, work, rel)
    return code, note


def _execute(
    sock: socket.socket, order: Header, work: str, scratch: str, children: _Children | None = None
) -> tuple[int, str | None]:
    # python: steps run with the interpreter Spark runs Python with on this worker,
    # unless the worker's environment or the pipeline names another
    python = {"CONVEYOR_PYTHON": sys.executable} if sys.executable else {}
    env = {**python, **os.environ, **order["env"], "CONVEYOR_PROJECT_DIR": work, "PWD": work}
    call = python_call(order["command"], env, order["env"])
    watch_read, watch_write = os.pipe()
    out_read, out_write = os.pipe()
    process: subprocess.Popen[bytes] | Forked | Turn
    try:
        if call is not None and children is not None and not order.get("isolate"):
            process = children.run(call, work, env, out_write, scratch)
        elif call is not None:
            process = Forked.start(call, work, env, watch_read, out_write, scratch)
        else:
            process = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, "conveyor-step", order["command"], scratch],
                cwd=work,
                env=env,
                stdin=watch_read,
                stdout=out_write,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except BaseException:
        os.close(out_read)
        os.close(watch_write)
        raise
    finally:
        os.close(watch_read)
        os.close(out_write)
    note: str | None = "unfinished"  # until the watch says otherwise: killed at the end
    try:
        code, note = _watch(sock, process, out_read, float(order["grace"]))
        if not _lives_on(process, note):
            _kill_group(process.pid, signal.SIGKILL)  # what the step left, and the watcher
        os.set_blocking(out_read, False)
        _forward_log(sock, out_read)  # the last words still in the pipe
        return code, note
    finally:
        if not _lives_on(process, note):
            _kill_group(process.pid, signal.SIGKILL)
        process.wait()
        os.close(out_read)
        os.close(watch_write)
        if isinstance(process, Turn) and children is not None:
            if process.keep:
                process.child.kept.append(scratch)
            if not process.child.alive or note is not None:
                children.retire()  # a cancelled datum's child is not reused


def _lives_on(process: subprocess.Popen[bytes] | Forked | Turn, note: str | None) -> bool:
    """Whether the process is a pack's child that ran its datum to the end and goes on
    with the next: then it is not killed (a datum's own processes die with the pack)."""
    return isinstance(process, Turn) and process.child.alive and note is None


def _watch(
    sock: socket.socket, process: subprocess.Popen[bytes] | Forked | Turn, out: int, grace: float
) -> tuple[int, str | None]:
    """Wait for the step, forwarding its output and obeying ``cancel``; returns code, note."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(out, select.POLLIN)
    pidfd = -1
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(process.pid)
        poller.register(pidfd, select.POLLIN)
    if isinstance(process, Turn):
        poller.register(process.fileno(), select.POLLIN)  # the child's answer
    kill_at, note = float("inf"), None
    try:
        while process.poll() is None:
            wait = kill_at - time.monotonic()
            if pidfd < 0:
                wait = min(wait, 0.01)
            for fd, _ in poller.poll(None if wait == float("inf") else max(0.0, wait) * 1000):
                if fd == out and not _forward_log(sock, out, once=True):
                    poller.unregister(out)  # every writer closed it
                elif fd == sock.fileno():
                    message = recv(sock)  # DriverGone ends the step below
                    if message.get("t") == "cancel" and note is None:  # for this step
                        note = "cancelled"
                        _kill_group(process.pid, signal.SIGTERM)
                        kill_at = time.monotonic() + grace
            if time.monotonic() >= kill_at:
                _kill_group(process.pid, signal.SIGKILL)
                kill_at = float("inf")
    except DriverGone:
        _kill_group(process.pid, signal.SIGKILL)
        raise
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    code = process.poll()
    assert code is not None  # the loop above ends when the step has exited
    if code < 0:
        return 128 - code, note or f"killed by {signal.Signals(-code).name}"
    return code, note


def _forward_log(sock: socket.socket, out: int, once: bool = False) -> bool:
    """Send what the step wrote; ``False`` at the end of its output."""
    while True:
        try:
            data = os.read(out, CHUNK)
        except BlockingIOError:
            return True
        if not data:
            return False
        send(sock, {"t": "log", "size": len(data)}, data)
        if once:
            return True


def _send_output(sock: socket.socket, work: str, rel: str) -> None:
    """Send a declared output: a file, or a directory with everything under it."""
    full = os.path.join(work, rel)
    if os.path.isfile(full):
        send_file(sock, {"t": "file", "path": rel}, full)
        return
    if not os.path.isdir(full):
        return  # missing: the driver reports it as not written
    send(sock, {"t": "dir", "path": rel})
    for dirpath, dirnames, filenames in os.walk(full):
        dirnames.sort()
        base = os.path.relpath(dirpath, work)
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                send(sock, {"t": "dir", "path": f"{base}/{name}"})
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):  # symlinks to files travel as their content
                send_file(sock, {"t": "file", "path": f"{base}/{name}"}, path)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
