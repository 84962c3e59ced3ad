"""The Dask task: runs one step invocation in a worker and returns how it went.

Shipped to the workers by value (cloudpickle), so it uses the standard library only (and
``distributed``, which every Dask worker has); the workers need no Conveyor install. The
task writes the step's input files into a private scratch directory, runs ``/bin/sh -e -c``
there with its log in a file, and returns the exit code, the log and the declared outputs.

Cancelling goes through the worker object, which outlives any client: ``stop_steps``
(run on every worker by ``Client.run``) marks keys stopped, and a task that sees its key
marked stops its step (TERM, grace, KILL) or does not start it. So a later process can end
what a dead one left running (``recover``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

STARTED_TOPIC = "conveyor-started"
"""The worker event each task logs when it starts its step (the client subscribes)."""
LOG_TOPIC = "conveyor-log"
"""Worker events carrying a running step's new output: ``[key, offset, bytes]``."""
_LOG_CHUNK = 64 * 1024  # bytes per log event
_LOG_PER_LOOK = 256 * 1024  # bytes sent per look at the log, so a chatty step cannot flood
_LOG_LIVE_MAX = 4 << 20
"""Bytes of a step's log sent live: the scheduler keeps recent events in memory, so the
rest of a long log comes with the task's result only."""
_CHECK_EVERY = 0.2  # seconds between looks at the stop marks while a step runs
_STOPPED_KEPT = 10000  # stop marks a worker remembers (oldest forgotten first)
# The step runs in its own session under this wrapper, which leaves a watcher in the
# step's process group: it reads a pipe only the task holds open, and when the worker dies
# it stops the whole group and removes the scratch directory, so nothing outlives it.
_WRAPPER = (
    "exec 3<&0 </dev/null; "
    '{ trap "" TERM; read _ <&3; kill -TERM 0; rm -rf "$2"; kill -KILL 0; } & '
    'exec /bin/sh -e -c "$1" 3<&-'
)

Output = tuple[str, str, int, bytes]
"""(project-relative path, ``file`` or ``dir``, mode, content)."""


def run_step(
    key: str, order: dict[str, Any], files: list[tuple[str, int, bytes]]
) -> dict[str, Any]:
    """The function each Dask task runs; ``order`` holds command, env, outputs, grace
    and scratch; ``files`` the inputs."""
    book = _book(_worker())
    with book["lock"]:
        if key in book["stopped"]:
            return {"code": None, "note": "cancelled", "log": b"", "outputs": []}
        book["running"].add(key)
    try:
        scratch = tempfile.mkdtemp(prefix="conveyor-step-", dir=order.get("scratch") or None)
        try:
            return _run_in(scratch, key, order, files, book)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        with book["lock"]:
            book["running"].discard(key)


def stop_steps(keys: list[str], dask_worker: Any = None) -> list[str]:
    """Run on each worker (``Client.run``): mark ``keys`` stopped; returns those running here."""
    book = _book(dask_worker if dask_worker is not None else _worker())
    with book["lock"]:
        stopped: dict[str, None] = book["stopped"]
        for key in keys:
            stopped[key] = None
        while len(stopped) > _STOPPED_KEPT:
            del stopped[next(iter(stopped))]
        return [key for key in keys if key in book["running"]]


def task_states(keys: list[str], dask_scheduler: Any = None) -> dict[str, str]:
    """Run on the scheduler (``Client.run_on_scheduler``): the state of each key it knows."""
    tasks = dask_scheduler.tasks if dask_scheduler is not None else {}
    return {k: ts.state for k in keys if (ts := tasks.get(k)) is not None}


def _worker() -> Any:
    from distributed import get_worker

    return get_worker()


def _book(worker: Any) -> dict[str, Any]:
    """Per-worker state shared by tasks and ``stop_steps``: it lives on the worker object,
    since a module shipped by value has no globals shared between tasks."""
    book = getattr(worker, "_conveyor_steps", None)
    if book is None:
        book = {"lock": threading.Lock(), "running": set(), "stopped": {}}
        worker._conveyor_steps = book
    return book


def _run_in(
    scratch: str,
    key: str,
    order: dict[str, Any],
    files: list[tuple[str, int, bytes]],
    book: dict[str, Any],
) -> dict[str, Any]:
    work = os.path.join(scratch, "work")
    os.mkdir(work)
    for rel, mode, data in files:
        if not _safe_relative(rel):
            raise ValueError(f"unsafe input path {rel!r}")
        target = os.path.join(work, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
        os.chmod(target, mode & 0o777)
    log_path = os.path.join(scratch, "log")
    with contextlib.suppress(Exception):  # the start time is a hint: never fail the step on it
        worker = _worker()
        worker.log_event(STARTED_TOPIC, [key, worker.address])
    code, note = _execute(key, order, work, scratch, log_path, book)
    with open(log_path, "rb") as handle:
        log = handle.read()
    outputs = [
        out for rel in order["outputs"] if _safe_relative(rel) for out in _collect(work, rel)
    ]
    return {"code": code, "note": note, "log": log, "outputs": outputs}


def _execute(
    key: str, order: dict[str, Any], work: str, scratch: str, log_path: str, book: dict[str, Any]
) -> tuple[int, str | None]:
    # python: steps run with the worker's interpreter unless the worker or pipeline names one
    python = {"CONVEYOR_PYTHON": sys.executable} if sys.executable else {}
    env = {**python, **os.environ, **order["env"], "CONVEYOR_PROJECT_DIR": work, "PWD": work}
    watch_read, watch_write = os.pipe()
    stream = _LogStream(key, log_path)
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, "conveyor-step", order["command"], scratch],
                cwd=work,
                env=env,
                stdin=watch_read,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        os.close(watch_read)
        watch_read = -1
        kill_at, note = float("inf"), None
        while True:
            try:
                process.wait(_CHECK_EVERY)
                break
            except subprocess.TimeoutExpired:
                pass
            stream.send()
            if note is None and key in book["stopped"]:
                note = "cancelled"
                _kill_group(process.pid, signal.SIGTERM)
                kill_at = time.monotonic() + float(order["grace"])
            if time.monotonic() >= kill_at:
                _kill_group(process.pid, signal.SIGKILL)
                kill_at = float("inf")
        _kill_group(process.pid, signal.SIGKILL)  # what the step left behind, and the watcher
        code = process.returncode
        if code < 0:
            return 128 - code, note or f"killed by {signal.Signals(-code).name}"
        return code, note
    finally:
        stream.close()
        if watch_read >= 0:
            os.close(watch_read)
        os.close(watch_write)


class _LogStream:
    """Sends what the step wrote to its log since the last look as worker events (the
    client appends them to the step's log while it runs: ``conveyor logs -f``). Best
    effort: the task's result still carries the whole log, and the client writes from
    it whatever the events did not bring."""

    def __init__(self, key: str, log_path: str) -> None:
        self.key = key
        self.offset = 0
        self._file: Any = None
        self._log_path = log_path
        try:
            self._worker: Any = _worker()
        except Exception:
            self._worker = None  # not in a Dask worker (a unit test): nothing to stream

    def send(self) -> None:
        if self._worker is None:
            return
        try:
            if self._file is None:
                self._file = open(self._log_path, "rb")  # noqa: SIM115 (closed by close)
            sent = 0
            while sent < _LOG_PER_LOOK and self.offset < _LOG_LIVE_MAX:
                data = self._file.read(min(_LOG_CHUNK, _LOG_LIVE_MAX - self.offset))
                if not data:
                    return
                self._worker.log_event(LOG_TOPIC, [self.key, self.offset, data])
                self.offset += len(data)
                sent += len(data)
        except Exception:
            self._worker = None  # the stream is a convenience: the result has the log

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _collect(work: str, rel: str) -> list[Output]:
    """A declared output: a file, or a directory with everything under it (links not
    followed into directories; a link to a file travels as its content)."""
    full = os.path.join(work, rel)
    if os.path.isfile(full):
        return [(rel, "file", os.stat(full).st_mode, _read(full))]
    if not os.path.isdir(full) or os.path.islink(full):
        return []  # missing: the runner reports it as not written
    found: list[Output] = [(rel, "dir", 0o755, b"")]
    for dirpath, dirnames, filenames in os.walk(full):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        base = os.path.relpath(dirpath, work)
        found += [(f"{base}/{name}", "dir", 0o755, b"") for name in dirnames]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                found.append((f"{base}/{name}", "file", os.stat(path).st_mode, _read(path)))
    return found


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _safe_relative(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\0" in rel:
        return False
    return ".." not in rel.replace("\\", "/").split("/")


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
