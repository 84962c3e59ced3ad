"""Answers read in the last second: who a token is (and their role on a project), and a
deployment's record, the two reads of every endpoint call.

A write through this process (a token revoked, a membership changed, a deployment
updated or its endpoint token rotated) forgets every answer at once, before the write's
caller hears back, so the old token is refused from the next request on. A write by
another process (the admin CLI, another HTTP process) is seen within a second;
a server of several HTTP processes keeps nothing (``keep_nothing``) so that a rotation
in one of them stops the old token in all of them at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_KEYS = 10_000
"""Answers kept at most (then all are dropped: a flood of unknown tokens holds no memory)."""


class Recent(Generic[T]):
    ttl = 1.0
    """Seconds an answer is kept (0: nothing is kept), for every ``Recent`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[float, T]] = {}
        self._generation = 0

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The answer for ``key`` read in the last ``ttl`` seconds, else ``read()``'s."""
        now = time.monotonic()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        generation = self._generation
        value = read()
        if Recent.ttl > 0:
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


def keep_nothing() -> None:
    """For a server of several processes: each read goes to the database."""
    Recent.ttl = 0.0
