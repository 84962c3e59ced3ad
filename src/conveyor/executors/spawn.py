"""Starting a step's shell with ``os.posix_spawn`` where it can, ``subprocess`` otherwise.

Both start the child with vfork semantics (the parent waits only until the exec), but
``subprocess.Popen`` does much more in Python around it: its error pipe, its argument and
descriptor checks, its object. For a chain of quick steps that is about 0.1 ms of CPU a
step in the one thread every step waits on, so posix_spawn is used when it gives the same
child: a new session, stdin from /dev/null, stdout and stderr appended to the log, the
environment given, SIGPIPE and SIGXFSZ at their defaults (``restore_signals``), and no
other descriptor of ours (``close_fds``). posix_spawn cannot
change the directory (Python 3.11 has no ``addchdir``) nor close descriptors by range, so
it is used only when the step's directory is ours, and descriptors we inherited without
close-on-exec are made close-on-exec once (Python makes its own that way already).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND  # the child keeps it: no O_CLOEXEC
_RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)
"""Signals Python ignores that Popen gives back to the child (``restore_signals``)."""


class Process(Protocol):
    """What the executor asks of a started child (``subprocess.Popen`` has it too)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class Spawned:
    """A child started by posix_spawn: reaped by ``waitpid``, exit codes as Popen gives
    them (minus the signal number for a child a signal ended)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): as Popen says
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                status = 0
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class Spawner:
    """Starts children for one executor; descriptors are checked at its first start."""

    def __init__(self) -> None:
        self._swept = False

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], workdir: Path, log_path: Path
    ) -> Process:
        """The child, its output appended to ``log_path``; OSError when it cannot start."""
        if _spawnable(argv) and os.fspath(workdir) == _cwd():
            if not self._swept:
                _close_inherited_on_exec()
                self._swept = True
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.fspath(log_path), _LOG_FLAGS, 0o666),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ]
            pid = os.posix_spawn(
                argv[0], list(argv), env, file_actions=actions, setsid=True, setsigdef=_RESTORED
            )
            return Spawned(pid)
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own group: Ctrl-C reaches us, we reach it
                close_fds=True,
            )


def _spawnable(argv: Sequence[str]) -> bool:
    """posix_spawn runs a path as given: it must not need a PATH search."""
    return hasattr(os, "posix_spawn") and bool(argv) and os.path.isabs(argv[0])


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the directory was removed: never equal to a step's
        return ""


def _close_inherited_on_exec() -> None:
    """Make every descriptor above stderr close-on-exec, as ``close_fds`` would close
    them in the child: only those this process inherited (or a library opened without
    the flag) change."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(3, 256)]
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
