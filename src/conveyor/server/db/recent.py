"""Answers read in the last second: who a token is (and their role on a project), and a
deployment's record, the two reads of every endpoint call.

A write through this process (a token revoked, a membership changed, a deployment
updated or its endpoint token rotated) forgets every answer at once, before the write's
caller hears back, so the old token is refused from the next request on. Processes on
one data directory (the server and its admin commands) share a stamp file there
(``share_writes``): each write appends a byte to it and each read first compares its
size and inode with the last seen, one ``stat``, so a token revoked by the admin CLI is
refused from the next request on too. A server of several HTTP processes keeps nothing
(``keep_nothing``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_KEYS = 10_000
"""Answers kept at most (then all are dropped: a flood of unknown tokens holds no memory)."""
MAX_STAMP = 1 << 20
"""Bytes the stamp grows to before it is replaced by a new file (a new inode)."""
_stamp: list[str] = []
"""The shared stamp file's path, once ``share_writes`` named it (process-wide)."""


def _mark() -> tuple[int, int] | None:
    """The stamp's (inode, size), or None when unset or unreadable (then nothing is kept)."""
    if not _stamp:
        return (0, 0)
    try:
        st = os.stat(_stamp[0])
    except OSError:
        return None
    return (st.st_ino, st.st_size)


def _bump() -> None:
    """Tell the other processes on this data directory that a write happened (a failure
    is logged: they then see the write when their answers expire, within ``ttl``)."""
    if not _stamp:
        return
    path = _stamp[0]
    try:
        if os.path.exists(path) and os.stat(path).st_size >= MAX_STAMP:
            fresh = f"{path}.{os.getpid()}"
            with open(fresh, "wb") as f:
                f.write(b".")
            os.replace(fresh, path)
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
    except OSError as exc:
        logging.getLogger("conveyor.server").warning("cannot mark a write in %s: %s", path, exc)


class Recent(Generic[T]):
    ttl = 1.0
    """Seconds an answer is kept (0: nothing is kept), for every ``Recent`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[float, T]] = {}
        self._generation = 0
        self._seen: tuple[int, int] | None = None

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The answer for ``key`` read in the last ``ttl`` seconds, else ``read()``'s."""
        now = time.monotonic()
        mark = _mark()
        if mark != self._seen or mark is None:  # another process wrote
            with self._lock:
                self._generation += 1
                self._answers.clear()
                self._seen = mark
        kept = self._answers.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        generation = self._generation
        value = read()
        if Recent.ttl > 0 and mark is not None:
            with self._lock:
                # a write that ended during the read: this answer may predate it
                if generation == self._generation:
                    if len(self._answers) >= MAX_KEYS:
                        self._answers.clear()
                    self._answers[key] = (now + Recent.ttl, value)
        return value

    def forget(self) -> None:
        """Drop every answer (after a write, before its caller is answered)."""
        with self._lock:
            self._generation += 1
            self._answers.clear()
        _bump()


def share_writes(stamp: os.PathLike[str] | str) -> None:
    """Share writes with the other processes that name the same stamp file (the server
    and the admin commands on one data directory)."""
    _stamp[:] = [os.fspath(stamp)]
    if _mark() is None:
        _bump()


def keep_nothing() -> None:
    """For a server of several processes: each read goes to the database."""
    Recent.ttl = 0.0
