"""What one server process keeps for its deployments: warm pools, rate buckets and
the slots of ``max_parallel_executions`` (all per process: with ``--http-processes``
each process has its own, and the limits are per process).

A pool is swapped, never stopped under a call: when a deployment's commit changes (a
push to the branch it follows, an update), the new pool starts in the background while
the old one keeps serving; once the new one is ready it takes the calls and the old one
is drained.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conveyor.server.warmpool.errors import CallTimeout, RateLimited, WorkerLost
from conveyor.server.warmpool.pool import PoolClosed, WarmPool

log = logging.getLogger("conveyor.server")
Key = tuple[str, str]
"""A deployment: its project and name."""
Builder = Callable[[], WarmPool]


@dataclass(frozen=True)
class Wanted:
    """The pool a deployment wants now: its commit and size, and how to make it."""

    key: Key
    commit: str
    size: int
    build: Builder


class Bucket:
    """A token bucket: ``per_minute`` calls a minute, bursts up to that many."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.tokens = float(per_minute)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.per_minute, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Runtime:
    def __init__(self) -> None:
        self.spawner = ThreadPoolExecutor(4, thread_name_prefix="warm-spawn")
        """Threads that live as long as the runtime: warm workers are started from them."""
        self._lock = threading.Lock()
        self._pools: dict[Key, WarmPool] = {}
        self._building: dict[Key, str] = {}
        self._ready: dict[Key, threading.Event] = {}
        self._failed: dict[Key, str] = {}
        self._buckets: dict[Key, Bucket] = {}
        self._slots: dict[Key, tuple[int, threading.BoundedSemaphore]] = {}
        self.stopping = threading.Event()
        """Set by ``close``: a wait for a run gives up (``ServerStopping``), so no thread
        reads the database after the process closed it."""
        self._threads: set[threading.Thread] = set()

    def admit(self, key: Key, limit: int) -> None:
        """Count a call against ``limit`` calls a minute (0: none; RateLimited when over)."""
        if not limit:
            return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.per_minute != limit:
                bucket = self._buckets[key] = Bucket(limit)
            ok = bucket.take()
        if not ok:
            raise RateLimited(
                f"deployment {key[1]!r} takes at most {limit} calls a minute; retry later"
            )

    def slot(self, key: Key, size: int) -> threading.BoundedSemaphore:
        """The semaphore of the deployment's ``max_parallel_executions``."""
        with self._lock:
            found = self._slots.get(key)
            if found is None or found[0] != size:
                found = self._slots[key] = (size, threading.BoundedSemaphore(size))
            return found[1]

    def call(
        self,
        wanted: Wanted,
        inputs: dict[str, Any],
        timeout: float,
        files: dict[str, bytes] | None = None,
        outputs: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """``outputs``: the paths of the files the call returns (read by the worker)."""
        deadline = time.monotonic() + timeout
        while True:
            pool = self.pool(wanted, deadline)
            try:
                left = max(0.001, deadline - time.monotonic())
                return pool.call(inputs, left, files, outputs)
            except PoolClosed:
                continue  # swapped while the call waited: the newer pool serves it

    def pool(self, wanted: Wanted, deadline: float) -> WarmPool:
        key = wanted.key
        with self._lock:
            current = self._pools.get(key)
            if current is not None and (current.commit, current.size) == (
                wanted.commit,
                wanted.size,
            ):
                return current
            if self._building.get(key) != wanted.commit:
                self._building[key] = wanted.commit
                ready = self._ready[key] = threading.Event()
                threading.Thread(target=self._build, args=(wanted, ready), daemon=True).start()
            ready = self._ready[key]
        if current is not None:
            return current  # the old version serves until the new one is ready
        if not ready.wait(max(0.0, deadline - time.monotonic())):
            raise CallTimeout("the deployment's warm workers did not start in time")
        with self._lock:
            started = self._pools.get(key)
        if started is None:
            why = self._failed.get(key, "see the server's log")
            raise WorkerLost(f"the deployment's warm workers could not start: {why}")
        return started

    def _build(self, wanted: Wanted, ready: threading.Event) -> None:
        key = wanted.key
        try:
            pool = wanted.build()
            pool.start()
        except Exception as exc:
            log.error("deployment %s/%s: warm workers failed to start: %s", *key, exc)
            with self._lock:
                self._failed[key] = str(exc)
                if self._building.get(key) == wanted.commit:
                    del self._building[key]
            ready.set()
            return
        with self._lock:
            old = self._pools.get(key)
            self._pools[key] = pool
            if self._building.get(key) == wanted.commit:
                del self._building[key]
        ready.set()
        if old is not None:
            old.drain()

    def drop(self, project: str, name: str) -> None:
        """Drain the deployment's pool (deleted, disabled, changed)."""
        with self._lock:
            pool = self._pools.pop((project, name), None)
            self._building.pop((project, name), None)
        if pool is not None:
            pool.drain()

    def pids(self, project: str, name: str) -> list[int]:
        with self._lock:
            pool = self._pools.get((project, name))
        return pool.pids() if pool is not None else []

    def background(self, target: Callable[..., None], *args: Any) -> None:
        """Run ``target(*args)`` in a thread of its own that ``close`` waits for (an
        execution waiting for its run, a settling, a scheduled firing)."""

        def tracked() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=tracked, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def background_count(self) -> int:
        """How many ``background`` threads have not ended."""
        with self._lock:
            return len(self._threads)

    def close(self) -> None:
        self.stopping.set()
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.drain(10.0)
        self.spawner.shutdown(wait=False)
        deadline = time.monotonic() + 10.0
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # they see ``stopping`` at their next poll
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
