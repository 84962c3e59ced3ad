"""Warm workers of ``low_latency`` deployments: processes with the function imported,
each serving one call at a time over a pipe (``program.PROGRAM``).

A worker that dies mid-call fails that call only (:class:`WorkerLost`) and is replaced
in the background. A pool is drained, never killed: it takes no new call, its calls in
flight finish, then its workers stop. Nothing starts in a constructor: ``start``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.server.warmpool.errors import CallTimeout, WorkerLost

log = logging.getLogger("conveyor.server")
READY_TIMEOUT = 60.0
MAX_LINE = 32 * 1024**2
MAX_OUTPUT_FILES = 16 * 1024**2
"""Bytes of output files one warm call returns, in all (a deployment's body limit aside)."""


class PoolClosed(Exception):
    """The pool was drained before the call took a worker: ask for the current pool."""


@dataclass(frozen=True)
class Launch:
    """How to start one worker: the command line (the sandbox around it) and its env."""

    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path
    log: Path | None = None
    """Where the workers' stderr goes (appended; None: nowhere)."""


class WarmWorker:
    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, spawner: Executor) -> None:
        """Start the process from ``spawner``'s long-lived threads (bwrap's
        ``--die-with-parent`` fires when the thread that started it ends), then wait
        until the function is imported."""
        spawner.submit(self._popen).result()
        self._wait_ready()

    def _popen(self) -> None:
        log = self.launch.log
        with open(log, "ab") if log is not None else open(os.devnull, "wb") as errors:
            self.proc = subprocess.Popen(
                list(self.launch.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=self.launch.cwd,
                env=self.launch.env,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        try:
            hello = self._read(time.monotonic() + READY_TIMEOUT)
        except (WorkerLost, CallTimeout) as exc:
            self.stop()
            raise ExecutorError(f"a warm worker did not start: {exc}") from None
        if not hello.get("ready"):
            self.stop()
            raise ExecutorError(f"a warm worker cannot load the function: {hello.get('error')}")

    def call(
        self,
        inputs: dict[str, Any],
        timeout: float,
        files: dict[str, bytes] | None = None,
        outputs: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        line: dict[str, Any] = {"inputs": inputs}
        if files:  # base64: the protocol is JSON lines
            line["files"] = {k: base64.b64encode(v).decode() for k, v in files.items()}
        if outputs:  # base64 grows by a third: the answer stays under MAX_LINE
            line.update(outputs=list(outputs), max_output=MAX_OUTPUT_FILES)
        try:
            self.proc.stdin.write(json.dumps(line).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise self._lost() from None
        try:
            return self._read(time.monotonic() + timeout)
        except CallTimeout:
            self.stop()  # its function is still busy: the pool replaces it
            raise

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout("the function did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._lost()
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                self.stop()
                raise WorkerLost("the function's answer is larger than 32 MiB")
        line, _, self._buffer = self._buffer.partition(b"\n")
        value: dict[str, Any] = json.loads(line)
        return value

    def _lost(self) -> WorkerLost:
        assert self.proc is not None
        code = self.proc.wait()
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return WorkerLost(f"the worker serving this call stopped ({how}); it is being replaced")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # bwrap --die-with-parent ends what runs inside
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a write buffered for a dead worker
                    stream.close()


class WarmPool:
    def __init__(
        self, commit: str, size: int, spawn: Callable[[], WarmWorker], spawner: Executor
    ) -> None:
        self.commit = commit
        self._spawner = spawner
        self.size = size
        self._spawn = spawn
        self._idle: list[WarmWorker] = []
        self._busy: set[WarmWorker] = set()
        self._cond = threading.Condition()
        self._closed = False
        self.restarts = 0

    def start(self) -> None:
        """Start every worker (in parallel); the first failure stops them all."""
        errors: list[Exception] = []

        def one() -> None:
            try:
                self._add(self._new())
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.drain(0)
            raise errors[0]

    def _new(self) -> WarmWorker:
        worker = self._spawn()
        worker.start(self._spawner)
        return worker

    def _add(self, worker: WarmWorker) -> None:
        with self._cond:
            if self._closed:
                worker.stop()
                return
            self._idle.append(worker)
            self._cond.notify()

    def call(
        self,
        inputs: dict[str, Any],
        timeout: float,
        files: dict[str, bytes] | None = None,
        outputs: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        worker = self._take(time.monotonic() + timeout)
        try:
            answer = worker.call(inputs, timeout, files, outputs)
        except (WorkerLost, CallTimeout):
            self._replace(worker)
            raise
        self._give_back(worker)
        return answer

    def _take(self, deadline: float) -> WarmWorker:
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise PoolClosed
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CallTimeout("every warm worker stayed busy until the call's timeout")
                self._cond.wait(left)
            if self._closed:
                raise PoolClosed
            worker = self._idle.pop()
            self._busy.add(worker)
            return worker

    def _give_back(self, worker: WarmWorker) -> None:
        with self._cond:
            self._busy.discard(worker)
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def _replace(self, worker: WarmWorker) -> None:
        with self._cond:
            self._busy.discard(worker)
            self._cond.notify_all()
        worker.stop()
        self.restarts += 1
        threading.Thread(target=self._restart, daemon=True).start()

    def _restart(self) -> None:
        for delay in (0.0, 0.5, 2.0, 5.0):
            time.sleep(delay)
            if self._closed:
                return
            try:
                self._add(self._new())
                return
            except Exception as exc:
                log.warning("a warm worker could not restart: %s", exc)

    def drain(self, timeout: float = 60.0) -> None:
        """No new calls; calls in flight finish (up to ``timeout``), then workers stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            idle, self._idle = self._idle, []
            for worker in idle:
                worker.stop()
            while self._busy and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            busy = list(self._busy)
        for worker in busy:
            worker.stop()

    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in [*self._idle, *self._busy] if w.pid is not None]
