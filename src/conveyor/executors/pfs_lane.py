"""Datum lanes: one long-lived bubblewrap sandbox per worker slot of a job (``-j``),
running its datums one after another, as a Pachyderm worker runs its datums in one
container. Starting a sandbox (user, PID and network namespaces, mounts) costs more
than a small datum; a lane pays it once.

The sandbox is ``pfs_sandbox.build_argv``'s (empty read-only root with the system
directories, no network, ``nobody``, its own PID namespace); its command is the shim
(``pfs_shim``, the system's ``python3``). The lane's ``pfs`` directory is seen at
``/pfs`` (read-only) with its ``out`` writable at ``/pfs/out``: before each datum the
host lays out that datum's inputs there (what differs from the last datum's: nothing
else can have changed them) and an empty ``out`` (the same directory: the mount holds
it). After each datum the shim kills what the datum left running and
empties ``/tmp``, ``/var/tmp``, ``/dev/shm`` and System V IPC. A datum that ends the
shim, outlives its timeout or leaves something the shim cannot clear fails alone (when
it failed) and the next datum gets a fresh sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TypeVar

from conveyor.domain.pathsets import ancestors
from conveyor.executors.pfs_sandbox import SYSTEM, build_argv
from conveyor.executors.sandbox import Sandbox

SHIM = Path(__file__).with_name("pfs_shim.py")
T = TypeVar("T")
_GONE = object()


SHIM_MODULES = "import ctypes, json, resource, selectors, struct, subprocess"
"""What the shim imports: a minimal Python (Debian's ``python3-minimal``) lacks some."""

_pythons: dict[str, str | None] = {}


def lane_python() -> str | None:
    """The system's ``python3`` when the sandbox shows it (under ``/usr``, ``/bin``...)
    with the modules the shim needs, else None: datums then get a sandbox each."""
    found = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
    if found is None:
        return None
    real = os.path.realpath(found)
    if not any(real.startswith(top + "/") for top in SYSTEM):
        return None
    if real not in _pythons:
        check = [real, "-I", "-S", "-c", SHIM_MODULES]
        done = subprocess.run(check, capture_output=True, check=False, timeout=60)
        _pythons[real] = real if done.returncode == 0 else None
    return _pythons[real]


class Lane:
    """One sandbox and its ``pfs`` directory under ``root``; one datum at a time."""

    def __init__(self, root: Path, program: str, python: str) -> None:
        self.root = root
        self.program = program
        self.python = python
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.where = root
        self._laid: dict[str, object] | None = {}
        """What ``pfs`` holds besides ``out``: path -> the value it was laid out from."""
        self._made: set[str] = set()
        """The directories below ``pfs`` made for them."""
        self._base: dict[str, str] | None = None
        self.control: IO[bytes]
        self.frames: IO[bytes]
        self.errors: IO[bytes]

    @property
    def pfs(self) -> Path:
        return self.where / "pfs"

    def prepare(
        self, files: Mapping[str, T], dirs: Iterable[str], place: Callable[[Path, T], None]
    ) -> Path:
        """The ``pfs`` directory for the next datum: exactly ``files`` (path below it ->
        what ``place(path, value)`` writes there), the directories ``dirs`` and an empty
        ``out`` (a fresh sandbox when the last one ended or its directory cannot be
        emptied). A datum cannot change ``pfs`` outside ``out`` (it is read-only in the
        sandbox), so what the last datum was given and this one is given too stays: only
        the difference is removed and laid out."""
        if self.proc is not None and self.proc.poll() is None:
            if _empty(self.pfs / "out"):
                try:
                    self._lay(files, dirs, place)
                except OSError:  # e.g. a directory that cannot be removed: start afresh
                    pass
                else:
                    return self.pfs
            self.close()
        self._start()
        self._lay(files, dirs, place)
        return self.pfs

    def _lay(
        self, files: Mapping[str, T], dirs: Iterable[str], place: Callable[[Path, T], None]
    ) -> None:
        pfs = self.pfs
        old, self._laid = self._laid, None  # unknown until laid out in whole
        if old is None:  # a layout that failed midway: everything but out goes
            if not _empty(pfs, keep="out"):
                raise OSError(f"{pfs} cannot be emptied")
            old, self._made = {}, set()
        for rel, value in old.items():
            if files.get(rel, _GONE) != value:
                os.unlink(pfs / rel)
        needed = set(dirs) | ancestors(files)
        for rel in sorted(self._made - needed, reverse=True):  # children before parents
            os.rmdir(pfs / rel)
        for rel in sorted(needed - self._made):  # parents before children
            os.mkdir(pfs / rel)
        self._made = needed
        for rel, value in files.items():
            if old.get(rel, _GONE) != value:
                place(pfs / rel, value)
        self._laid = dict(files)

    def _start(self) -> None:
        self.close()
        self.starts += 1
        self.where = self.root / f"s{self.starts}"
        (self.pfs / "out").mkdir(parents=True)
        self._laid, self._made = {}, set()
        code = SHIM.read_text(encoding="utf-8")
        # the channel is two pipes passed as extra descriptors: bwrap's init keeps only
        # its standard ones (and a datum can read /proc/1/fd), the shim is undumpable
        requests, control = os.pipe()
        frames, reply = os.pipe()
        shim = [self.python, "-I", "-S", "-c", code, str(requests), str(reply)]
        argv = build_argv(self.program, self.pfs, shim, "/")
        # bwrap's and the shim's errors: a nameless file (no project path shows in /proc)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (the sandbox's lifetime)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.errors,
                env={"PATH": "/usr/bin:/bin"},
                pass_fds=(requests, reply),
            )
        finally:
            os.close(requests)
            os.close(reply)
        self.control = os.fdopen(control, "wb")
        self.frames = os.fdopen(frames, "rb")

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """A datum's environment as ``Sandbox.environment`` makes it, the harmless part of
        this process's read once per lane (not once per datum)."""
        if self._base is None:
            self._base = Sandbox().environment({})
        return {**self._base, **env}

    def run(
        self,
        cmd: tuple[str, ...],
        stdin: bytes,
        env: dict[str, str],
        working_dir: str | None,
        memory: int | None,
        timeout: float | None,
        out: IO[bytes],
    ) -> int:
        """Run one datum (``prepare`` first) with its output written to ``out``: its
        exit code, or -1 when it timed out or its sandbox ended."""
        proc = self.proc
        assert proc is not None
        request = {
            "cmd": list(cmd),
            "stdin": stdin.decode("utf-8", "surrogateescape"),
            "env": env,
            "cwd": working_dir or "/pfs",
            "memory": memory,
        }
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            self.control.write(json.dumps(request).encode() + b"\n")
            self.control.flush()
            ended = _frames(self.frames, out)
        except (BrokenPipeError, OSError):
            ended = None
        finally:
            if timer is not None:
                timer.cancel()
        if ended is not None and not timed_out.is_set():
            code, clean = ended
            if not clean:
                out.write(b"--- the sandbox could not be cleared: the next datum gets a new one\n")
                self._stop()
            return code
        if timed_out.is_set():
            out.write(f"--- timed out after {timeout} s\n".encode())
        else:
            out.write(b"--- the datum's sandbox ended before the datum did\n")
            out.write(_tail(self.errors))
        self._stop()
        return -1

    def close(self) -> None:
        """The sandbox stopped and its directory removed."""
        self._stop()
        remove_tree(self.where)

    def _stop(self) -> None:
        """The sandbox stopped (its input closed, killed if it lingers); its directory
        stays until the next datum (a datum's outputs are stored after it ran)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            self.control.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.frames.close()
        self.errors.close()


def _frames(pipe: IO[bytes], out: IO[bytes]) -> tuple[int, bool] | None:
    """The shim's frames of one datum: output to ``out``, then (exit code, clean);
    None when the pipe ends first."""
    while True:
        head = pipe.read(5)
        if len(head) < 5:
            return None
        if head[:1] == b"D":
            (size,) = struct.unpack(">I", head[1:])
            data = pipe.read(size)
            out.write(data)
            if len(data) < size:
                return None
        elif head[:1] == b"X":
            rest = pipe.read(1)
            if len(rest) < 1:
                return None
            (code,) = struct.unpack(">i", head[1:])
            return code, rest == b"\x01"
        else:
            return None


def _tail(errors: IO[bytes]) -> bytes:
    try:
        size = errors.seek(0, os.SEEK_END)
        errors.seek(max(0, size - 2048))
        return errors.read()
    except OSError:
        return b""


def _empty(folder: Path, keep: str | None = None) -> bool:
    """Every entry of ``folder`` removed but ``keep``; False when one cannot be."""
    try:
        fd = os.open(folder, _DIRECTORY)
        try:
            _clear(fd, [name for name in os.listdir(fd) if name != keep])
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _clear(top: int, names: list[str]) -> None:
    """``names`` removed from the directory open as ``top``, whatever is below them: no
    recursion and no path longer than one name (a datum's tree may be deeper than
    Python's stack or than a path may be long), links removed and never followed, a
    directory closed to everyone opened first."""
    stack: list[tuple[int, Iterator[str], str | None]] = [(top, iter(names), None)]
    try:
        while stack:
            fd, left, own = stack[-1]
            name = next(left, None)
            if name is None:
                stack.pop()
                if own is not None:
                    os.close(fd)
                    os.rmdir(own, dir_fd=stack[-1][0])
            elif stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                os.chmod(name, 0o700, dir_fd=fd)
                below = os.open(name, _DIRECTORY, dir_fd=fd)
                stack.append((below, iter(os.listdir(below)), name))
            else:
                os.unlink(name, dir_fd=fd)
    finally:
        for fd, _, own in stack:
            if own is not None:
                os.close(fd)


def remove_tree(path: Path) -> None:
    """``path`` and everything below it gone, as far as it can be, at any depth (a
    datum's scratch: ``shutil.rmtree`` recurses and a datum's tree can be deeper than
    Python's stack)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)
            fd = os.open(path, _DIRECTORY)
            try:
                _clear(fd, os.listdir(fd))
            finally:
                os.close(fd)
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


class Lanes:
    """The lanes of one job, lent to its worker threads one at a time."""

    def __init__(self, root: Path, program: str, python: str) -> None:
        self.root = root
        self.program = program
        self.python = python
        self._idle: list[Lane] = []
        self._all: list[Lane] = []
        self._lock = threading.Lock()

    def take(self) -> Lane:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            lane = Lane(self.root / f"lane{len(self._all)}", self.program, self.python)
            self._all.append(lane)
            return lane

    def give(self, lane: Lane) -> None:
        with self._lock:
            self._idle.append(lane)

    def close(self) -> None:
        for lane in self._all:
            lane.close()
