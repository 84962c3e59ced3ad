"""``python:`` steps in a fork of the Spark task's interpreter (no new interpreter per
datum), behaving as the command run by ``/bin/sh`` would: one child per pack running its
datums in turn (``Child``), or a fork per datum (``Forked``) for a job whose ``spark``
table says ``isolate: true``.

Shipped to the workers by value with ``worker`` (standard library only).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import select
import shlex
import shutil
import signal
import socket
import sys
import threading
import traceback
from typing import Any, TextIO

from conveyor.executors.spark.wire import DriverGone, recv, send

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
        code = _exit_code(exc)
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


# -- one child per pack ---------------------------------------------------------------
class Child:
    """A fork of the task that runs the pack's ``python:`` datums one after the other
    (what PySpark's reused Python workers do): no fork, set-up or exit per datum, and
    what a datum imported stays imported for the next. It runs in its own session like
    ``Forked``; each datum is sent over ``control`` (a socket pair) with its own output
    pipe, and the child answers with its exit code. A datum that kills or ends the
    child (``os._exit``, a signal, a cancel) ends it: the next datum gets a new one."""

    def __init__(self, pid: int, control: socket.socket, watch: int) -> None:
        self.pid = pid
        self.control = control
        self.watch = watch  # held by the task only: the child's orphan watch reads it
        self.alive = True
        self.kept: list[str] = []
        """Scratch directories a module of the child was imported from: removed when
        the child ends, not before (the module's ``__file__`` and package path)."""

    @staticmethod
    def start() -> Child:
        task_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        watch_read, watch_write = os.pipe()
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child ends in os._exit
                task_end.close()
                _serve_child(child_end.fileno(), watch_read)
        except BaseException:
            task_end.close()
            os.close(watch_write)
            raise
        finally:
            child_end.close()
            os.close(watch_read)
        return Child(pid, task_end, watch_write)

    def run(self, call: list[str], work: str, env: dict[str, str], out: int, scratch: str) -> Turn:
        """Hand one datum to the child, its output going to ``out``."""
        socket.send_fds(self.control, [b"d"], [out])
        send(self.control, {"call": call, "work": work, "env": env, "scratch": scratch})
        return Turn(self)

    def living(self) -> bool:
        """Whether it is still there (a datum's thread may end it between datums)."""
        if self.alive and os.waitpid(self.pid, os.WNOHANG)[0]:
            self.alive = False
        return self.alive

    def stop(self) -> None:
        """End the child, idle between datums, and what a datum left in its group."""
        self.control.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.alive:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.alive = False
        os.close(self.watch)


class Turn:
    """One datum in a ``Child``, with what the task's watch needs of ``Popen``: done
    when the child answers (it lives on) or when the child ends (that datum's end)."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.pid = child.pid
        self.returncode: int | None = None
        self.keep = False

    def fileno(self) -> int:
        """The descriptor that becomes readable when the child answers (or ends)."""
        return self.child.control.fileno()

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        if self.returncode is None and select.select([self.child.control], [], [], 0)[0]:
            try:
                answer = recv(self.child.control)
            except (DriverGone, OSError):  # it is ending: its status is the datum's end
                self._reap(0)
            else:
                self.returncode, self.keep = int(answer["code"]), bool(answer["keep"])
        return self.returncode

    def wait(self) -> int:
        while self.poll() is None:
            select.select([self.child.control], [], [], 0.05)
        assert self.returncode is not None
        return self.returncode

    def _reap(self, flags: int) -> None:
        if not self.child.alive:
            return
        pid, status = os.waitpid(self.pid, flags)
        if pid:
            self.child.alive = False
            self.returncode = os.waitstatus_to_exitcode(status)


def _serve_child(control_fd: int, watch: int) -> None:  # pragma: no cover - in the child
    code = 0
    try:
        gc.freeze()
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        # above any fd the moves below write over, then to 3 (control), 4 (watch), 5 (null)
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (control_fd, watch, null)]
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for target, fd in enumerate(moved, start=3):
            os.dup2(fd, target, inheritable=False)
        os.closerange(6, 1 << 20)  # the task's socket and pipe ends: never held by a datum
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        scratches: list[str] = []
        threading.Thread(target=_orphan_watch_all, args=(4, scratches), daemon=True).start()
        streams = (
            open(1, "w", encoding="utf-8", closefd=False),  # noqa: SIM115
            open(2, "w", encoding="utf-8", buffering=1, closefd=False),  # noqa: SIM115
        )
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.path.insert(0, "")
        sys.dont_write_bytecode = True
        control = socket.socket(fileno=3)
        while True:
            mark, fds, _, _ = socket.recv_fds(control, 1, 1)
            if not mark or not fds:
                break  # the task closed its end: the pack is done
            order = recv(control)
            scratches.append(order["scratch"])
            datum_code, keep = _one_datum(order, fds[0], streams)
            if not keep:
                scratches.remove(order["scratch"])
            send(control, {"code": datum_code, "keep": keep})
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _exit_code(exc: SystemExit) -> int:  # pragma: no cover - runs in the child
    """The code ``sys.exit(arg)`` asks for, as the interpreter reads it: None is 0, a
    number is itself, anything else is printed to stderr and is 1."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


_COMPILED: dict[str, Any] = {}
"""The runner's code, compiled once per child (every datum of a step runs the same)."""


def _one_datum(  # pragma: no cover - runs in the child
    order: dict[str, Any], out: int, streams: tuple[TextIO, TextIO]
) -> tuple[int, bool]:
    """Run one datum as ``_run_forked`` would; its exit code, and whether a module was
    imported from its directory (then that directory must outlive it)."""
    work: str = order["work"]
    call: list[str] = order["call"]
    before, path = set(sys.modules), list(sys.path)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    code = 1
    try:
        os.chdir(work)
        os.environ.clear()
        os.environ.update(order["env"])
        sys.stdout, sys.stderr = streams
        sys.argv = ["-c", *call[1:]]
        if call[0] not in _COMPILED:
            _COMPILED[call[0]] = compile(call[0], "<string>", "exec")
        exec(_COMPILED[call[0]], {"__name__": "__main__"})
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr, *streams):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(5, 1)  # the datum's pipe closed here: its log ends with it
        os.dup2(5, 2)
        sys.path[:] = path  # the runner put the datum's directory first
    prefix = os.path.join(work, "")
    keep = any(
        place.startswith(prefix)
        for name in set(sys.modules) - before
        for place in _module_places(sys.modules.get(name))
    )
    return code, keep


def _module_places(module: object) -> list[str]:  # pragma: no cover - in the child
    places = [getattr(module, "__file__", None) or ""]
    places += [str(p) for p in getattr(module, "__path__", None) or ()]
    return places


def _orphan_watch_all(fd: int, scratches: list[str]) -> None:  # pragma: no cover - in the child
    with contextlib.suppress(OSError):
        os.read(fd, 1)  # returns when the task's end of the pipe closes: the task is gone
    for scratch in list(scratches):
        shutil.rmtree(scratch, ignore_errors=True)
    os.killpg(0, signal.SIGKILL)
