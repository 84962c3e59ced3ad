"""``python:`` steps in a fork of the Spark task's interpreter (no new interpreter per
datum), behaving as the command run by ``/bin/sh`` would.

Shipped to the workers by value with ``worker`` (standard library only).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shlex
import shutil
import signal
import sys
import threading
import traceback

_PYTHON_PREFIX = '"${CONVEYOR_PYTHON:-python3}" -B -c '
"""How a ``python:`` step's command starts (``conveyor.plan.datums.python_command``)."""


def python_call(command: str, env: dict[str, str], declared: dict[str, str]) -> list[str] | None:
    """``[code, *args]`` when ``command`` is ``$CONVEYOR_PYTHON -B -c CODE ARGS...`` and
    ``$CONVEYOR_PYTHON`` is this very interpreter, with no ``PYTHON*`` variable set by
    the pipeline (they act at interpreter start): a fork of this process then runs it
    exactly as a new interpreter would, without paying for the interpreter's start."""
    if not command.startswith(_PYTHON_PREFIX) or env.get("CONVEYOR_PYTHON") != sys.executable:
        return None
    if any(key.startswith("PYTHON") for key in declared):
        return None
    rest = command[len(_PYTHON_PREFIX) :]
    try:
        words = shlex.split(rest)
    except ValueError:
        return None
    return words if words and shlex.join(words) == rest else None


class Forked:
    """A ``python:`` step in a fork of the task's process, with what ``_watch`` needs of
    ``Popen``. The fork runs in its own session like a shell step; a thread in it reads
    the watch pipe and, if the task dies, removes the scratch directory and kills the
    step's process group (what the shell wrapper's watcher (``worker``) does for a shell step)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    @staticmethod
    def start(
        call: list[str], work: str, env: dict[str, str], watch: int, out: int, scratch: str
    ) -> Forked:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit
            _run_forked(call, work, env, watch, out, scratch)
        return Forked(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _run_forked(  # pragma: no cover - runs in the forked child
    call: list[str], work: str, env: dict[str, str], watch: int, out: int, scratch: str
) -> None:
    gc.freeze()  # the task's objects: never traversed here, so their pages stay shared
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(watch, 3)
        os.dup2(null, 0)
        os.closerange(4, 1 << 20)  # the task's socket and pipe ends: never held by the step
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        threading.Thread(target=_orphan_watch, args=(3, scratch), daemon=True).start()
        os.chdir(work)
        os.environ.clear()
        os.environ.update(env)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        sys.argv = ["-c", *call[1:]]
        sys.path.insert(0, "")
        sys.dont_write_bytecode = True
        exec(compile(call[0], "<string>", "exec"), {"__name__": "__main__"})
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _orphan_watch(fd: int, scratch: str) -> None:  # pragma: no cover - in the child
    with contextlib.suppress(OSError):
        os.read(fd, 1)  # returns when the task's end of the pipe closes: the task is gone
    shutil.rmtree(scratch, ignore_errors=True)
    os.killpg(0, signal.SIGKILL)
