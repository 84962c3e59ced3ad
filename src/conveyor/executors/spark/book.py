"""The driver's table of invocations: buffered, queued (in a Spark job), running, done.

Shared by the runner's thread (submit, poll, cancel), the channel's connection threads
(claim, finish) and the job threads (a job that ended); one lock guards it, and a
condition wakes ``poll`` when a completion arrives. An invocation completes exactly once:
later reports about it (a Spark retry of its task, a late exit) are ignored.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from conveyor.executors.base import Completion, EndState, Invocation

Phase = Literal["buffered", "queued", "running"]
Notify = Callable[[], None]
"""Tells a running task to stop (sends ``cancel`` on its connection)."""


@dataclass
class Entry:
    sid: str
    invocation: Invocation
    phase: Phase = "buffered"
    batch: str | None = None
    cancelled: bool = False
    cancel_deadline: float | None = None
    stop: Notify | None = None
    """Set while a task runs the invocation."""
    ran_on: Mapping[str, str] | None = None
    """The task that claimed it and its host (``Completion.ran_on``)."""


@dataclass
class _Batch:
    group: str
    sids: list[str] = field(default_factory=list)
    cancelled: bool = False


class Book:
    def __init__(self, cancel_wait: float) -> None:
        self.cancel_wait = cancel_wait
        """Seconds a running task has to confirm a cancel before it is reported anyway."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[str, Entry] = {}
        self._sids: dict[str, str] = {}  # invocation key -> sid
        self._done: dict[str, Completion] = {}
        self._buffer: list[str] = []
        self._batches: dict[str, _Batch] = {}
        self._counter = itertools.count(1)

    # -- the runner's side ---------------------------------------------------------
    def add(self, invocation: Invocation) -> str:
        with self._lock:
            sid = str(next(self._counter))
            self._entries[sid] = Entry(sid, invocation)
            self._sids[invocation.key] = sid
            self._buffer.append(sid)
            return sid

    def take_buffer(self, group: str) -> list[str]:
        """Everything submitted since the last call becomes one batch (one Spark job)."""
        with self._lock:
            sids = [s for s in self._buffer if s in self._entries]
            self._buffer.clear()
            if sids:
                self._batches[group] = _Batch(group, sids)
                for sid in sids:
                    self._entries[sid].phase = "queued"
                    self._entries[sid].batch = group
            return sids

    def wait(self, keys: Sequence[str], timeout: float) -> list[Completion]:
        """Completions among ``keys``, waiting up to ``timeout`` seconds for the first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                self._expire_cancels()
                found = [self._done.pop(k) for k in keys if k in self._done]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(min(remaining, self.cancel_wait))

    def cancel(self, keys: Sequence[str]) -> tuple[list[Notify], list[str]]:
        """Mark these cancelled: returns the running tasks to notify and the batches
        whose invocations are now all done (their Spark jobs can be cancelled)."""
        notify: list[Notify] = []
        batches: set[str] = set()
        with self._lock:
            for key in keys:
                entry = self._entry(key)
                if entry is None or entry.cancelled:
                    continue
                entry.cancelled = True
                if entry.phase == "running" and entry.stop is not None:
                    entry.cancel_deadline = time.monotonic() + self.cancel_wait
                    notify.append(entry.stop)
                else:  # not started: nothing to stop
                    self._complete(entry, "cancelled", None, "cancelled")
                if entry.batch is not None:
                    batches.add(entry.batch)
            finished = [b for b in batches if self._batch_done(b)]
        return notify, finished

    def running(self, keys: Sequence[str]) -> list[str]:
        """Those of ``keys`` whose step a task has claimed (it is running)."""
        with self._lock:
            return [k for k in keys if (e := self._entry(k)) is not None and e.phase == "running"]

    def live_keys(self) -> list[str]:
        with self._lock:
            return [e.invocation.key for e in self._entries.values()]

    def idle(self) -> bool:
        with self._lock:
            return not self._entries

    # -- the channel's side ----------------------------------------------------------
    def claim(
        self, sid: str, stop: Notify, ran_on: Mapping[str, str] | None = None
    ) -> Invocation | None:
        """A task asks for ``sid``: the invocation if it is still to run, else ``None``.

        A second task for an invocation already running means Spark re-ran the task
        after losing the first attempt's executor: the step is reported lost."""
        with self._lock:
            entry = self._entries.get(sid)
            if entry is None or entry.cancelled:
                return None
            if entry.phase == "running":
                message = "Spark started the step's task again: the executor running it was lost"
                self._complete(entry, "lost", None, message)
                return None
            entry.phase = "running"
            entry.stop = stop
            entry.ran_on = ran_on
            return entry.invocation

    def finish(self, sid: str, state: EndState, code: int | None, message: str | None) -> None:
        with self._lock:
            entry = self._entries.get(sid)
            if entry is None:
                return
            if entry.cancelled:
                state, message = "cancelled", "cancelled"
            self._complete(entry, state, code, message)

    # -- the job threads' side -------------------------------------------------------
    def job_ended(self, group: str, message: str | None) -> None:
        """A batch's Spark job ended: what no task started is lost. A started one is
        left to its connection, which ends with the exit message or breaks (lost)."""
        with self._lock:
            batch = self._batches.pop(group, None)
            for sid in batch.sids if batch else []:
                entry = self._entries.get(sid)
                if entry is not None and entry.phase == "queued":
                    reason = message or "the Spark job ended without running the step"
                    self._complete(entry, "lost", None, reason)

    # -- internals (lock held) -------------------------------------------------------
    def _entry(self, key: str) -> Entry | None:
        sid = self._sids.get(key)
        return self._entries.get(sid) if sid else None

    def _complete(self, entry: Entry, state: EndState, code: int | None, msg: str | None) -> None:
        """Record the one completion of ``entry`` and forget it."""
        entry.stop = None
        key = entry.invocation.key
        self._done[key] = Completion(key, state, code, msg, ran_on=entry.ran_on)
        del self._entries[entry.sid]
        if self._sids.get(key) == entry.sid:
            del self._sids[key]
        self._changed.notify_all()

    def _batch_done(self, group: str) -> bool:
        """Whether nothing of the batch is left to run (cancelled steps are being stopped
        by their tasks), so its Spark job can go; true once per batch."""
        batch = self._batches.get(group)
        if batch is None or batch.cancelled:
            return False
        batch.cancelled = all(
            s not in self._entries or self._entries[s].cancelled for s in batch.sids
        )
        return batch.cancelled

    def _expire_cancels(self) -> None:
        now = time.monotonic()
        for entry in list(self._entries.values()):
            if entry.cancel_deadline is not None and now >= entry.cancel_deadline:
                message = "cancelled (the Spark task did not confirm that the step stopped)"
                self._complete(entry, "cancelled", None, message)
