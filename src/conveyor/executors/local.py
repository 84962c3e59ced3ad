"""Run invocations as local processes, each in its own process group.

Children are watched through pidfds, so ``poll`` sleeps until one exits instead of
spinning; cancelling signals the whole group (TERM, then KILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.executors.base import Capacity, Completion, Handle, Invocation, Recovered
from conveyor.executors.local_settings import local_settings
from conveyor.executors.sandbox import Sandbox
from conveyor.executors.spawn import Process, Spawner

SHELL = ("/bin/sh", "-e", "-c")


@dataclass(eq=False)  # a holder of services, never compared
class _Child:
    """A step's shell process, its pidfd and when its cancel turns into a kill."""

    process: Process
    pidfd: int | None
    cancel_deadline: float | None = None


class LocalExecutor:
    name = "local"
    starts_containers = True
    """Its shell text runs on this machine, where the container runtime is."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        read = local_settings(settings)
        self.grace = read.grace
        self.default_parallelism = read.parallelism
        # a server's steps run in a sandbox (see executors.sandbox); a laptop's do not
        self.sandbox = Sandbox.from_setting(read.sandbox)
        self._children: dict[str, _Child] = {}
        self._log_dirs: set[Path] = set()
        self._spawner = Spawner()
        self._environ: dict[str, str] | None = None
        """This process's environment when the executor started its first step."""

    def submit(self, invocation: Invocation) -> Handle:
        if invocation.log_path.parent not in self._log_dirs:
            invocation.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_dirs.add(invocation.log_path.parent)
        argv = [*SHELL, invocation.command]
        if self._environ is None:  # read once: a copy of os.environ costs 0.05 ms a step
            self._environ = dict(os.environ)
        env = {**self._environ, **invocation.env}
        if self.sandbox is not None and not invocation.contained:
            argv = self.sandbox.argv(invocation.workdir, argv)  # ExecutorError: no sandbox
            env = self.sandbox.environment(invocation.env)
        try:
            process = self._spawner.start(argv, env, invocation.workdir, invocation.log_path)
        except OSError as exc:
            with contextlib.suppress(OSError), open(invocation.log_path, "ab") as log:
                log.write(f"conveyor: cannot start the step: {exc}\n".encode())
            raise
        pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(process.pid)
        self._children[invocation.key] = _Child(process, pidfd)
        return Handle(invocation.key, str(process.pid))

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        done = self._collect(handles)
        if done or timeout <= 0:
            return done
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            wait = min(remaining, self._next_escalation() - time.monotonic())
            if wait > 0:
                self._wait(handles, wait)
            self._escalate()
            done = self._collect(handles)
            if done or time.monotonic() >= deadline:
                return done

    def cancel(self, handles: Sequence[Handle]) -> None:
        now = time.monotonic()
        for handle in handles:
            child = self._children.get(handle.key)
            if child is None or child.cancel_deadline is not None:
                continue
            child.cancel_deadline = now + self.grace
            _signal_group(child.process.pid, signal.SIGTERM)

    def close(self) -> None:
        live = [Handle(k, str(c.process.pid)) for k, c in self._children.items()]
        self.cancel(live)
        deadline = time.monotonic() + self.grace + 1
        while self._children and time.monotonic() < deadline:
            self.poll(list(live), 0.2)
        for child in list(self._children.values()):
            _signal_group(child.process.pid, signal.SIGKILL)
            child.process.wait()
            self._forget(child)
        self._children.clear()

    def started(self, handles: Sequence[Handle]) -> list[str]:
        """Every invocation starts in ``submit``: its process is spawned there."""
        return [h.key for h in handles if h.key in self._children]

    def capacity(self) -> Capacity:
        """This machine always has somewhere to run (the runner's -j bounds the load)."""
        return Capacity(self.default_parallelism)

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        """Kill the process groups a dead conveyor process left: ``backend_id`` is the pid
        of the step's shell, which leads its own session (see ``submit``)."""
        done = []
        for handle in handles:
            pid = int(handle.backend_id) if handle.backend_id.isdigit() else 0
            if pid <= 1:
                done.append(Recovered(handle.key, False, "not a local process id"))
            elif not _leads_own_session(pid):  # gone, or the pid was reused by another
                done.append(Recovered(handle.key, False, f"process {pid} has ended"))
            else:
                _signal_group(pid, signal.SIGKILL)
                done.append(Recovered(handle.key, True, f"killed process group {pid}"))
        return done

    # -- internals ----------------------------------------------------------------
    def _collect(self, handles: Sequence[Handle]) -> list[Completion]:
        done = []
        for handle in handles:
            child = self._children.get(handle.key)
            if child is None:
                continue
            code = child.process.poll()
            if code is None:
                continue
            # the shell may be gone while a background child lives on: end the group
            _signal_group(child.process.pid, signal.SIGKILL)
            del self._children[handle.key]
            self._forget(child)
            if child.cancel_deadline is not None:
                done.append(Completion(handle.key, "cancelled", code, "cancelled"))
            elif code < 0:
                name = signal.Signals(-code).name
                done.append(Completion(handle.key, "exited", 128 - code, f"killed by {name}"))
            else:
                done.append(Completion(handle.key, "exited", code))
        return done

    def _wait(self, handles: Sequence[Handle], seconds: float) -> None:
        fds = [c.pidfd for h in handles if (c := self._children.get(h.key)) and c.pidfd is not None]
        if fds and len(fds) == len(handles):
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.poll(seconds * 1000)
        else:  # no pidfd support: a short sleep bounds the latency
            time.sleep(min(seconds, 0.01))

    def _next_escalation(self) -> float:
        deadlines = [c.cancel_deadline for c in self._children.values() if c.cancel_deadline]
        return min(deadlines, default=float("inf"))

    def _escalate(self) -> None:
        now = time.monotonic()
        for child in self._children.values():
            if child.cancel_deadline is not None and now >= child.cancel_deadline:
                _signal_group(child.process.pid, signal.SIGKILL)

    @staticmethod
    def _forget(child: _Child) -> None:
        if child.pidfd is not None:
            os.close(child.pidfd)
            child.pidfd = None


def _leads_own_session(pid: int) -> bool:
    """A live (not zombie) process that leads its own session, as the steps we start do."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
        return fields[0] not in ("Z", "X") and int(fields[3]) == pid
    except (OSError, ValueError, IndexError):
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
