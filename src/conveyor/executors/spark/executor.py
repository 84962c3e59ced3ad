"""Run step invocations as Spark tasks, on ``local[*]`` or a standalone/cluster master.

``submit`` only records the invocation; ``poll`` starts the SparkContext the first time
and turns everything submitted since the last poll into one Spark job, one task per
pack of invocations (``datums_per_task``, see ``packing``), run by a driver thread
under its own job group, and returns completions as the tasks report them over the
channel (see ``channel`` and ``worker``). ``cancel`` tells a running task to stop its
step, drops a queued one, and cancels a job whose invocations are all done; ``close``
cancels what is left and stops the context.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.executors.base import (
    UNBOUNDED,
    Capacity,
    Completion,
    Handle,
    IdleClock,
    Invocation,
    Recovered,
)
from conveyor.executors.spark import packing, worker
from conveyor.executors.spark.book import Book
from conveyor.executors.spark.channel import Channel
from conveyor.executors.spark.engine import Engine, TaskFunction, first_line
from conveyor.executors.spark.settings import SparkSettings

_CONFIRM_EXTRA = 30.0
"""Seconds beyond the grace period a task has to confirm that its step stopped."""
_CAPACITY_EVERY = 1.0
"""Seconds an answer of ``capacity`` is reused (it costs one Py4J call)."""


class SparkExecutor:
    name = "spark"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = SparkSettings.parse(settings or {})
        self.default_parallelism = self.settings.parallelism
        self._book = Book(cancel_wait=self.settings.grace_seconds + _CONFIRM_EXTRA)
        self._engine = Engine(self.settings)
        self._channel: Channel | None = None
        self._task: TaskFunction | None = None
        self._jobs: dict[str, threading.Thread] = {}
        self._batches = 0
        self._tag = secrets.token_hex(3)
        self._log_dirs: list[Path] = []
        self._capacity = UNBOUNDED
        self._capacity_at = -_CAPACITY_EVERY
        self._idle = IdleClock(self.settings.start_grace)

    # -- the contract --------------------------------------------------------------------
    def submit(self, invocation: Invocation) -> Handle:
        log_dir = invocation.log_path.parent
        if log_dir not in self._log_dirs:
            log_dir.mkdir(parents=True, exist_ok=True)
            self._log_dirs.append(log_dir)
        invocation.log_path.touch()
        sid = self._book.add(invocation)
        return Handle(invocation.key, f"conveyor-{self._tag}/{sid}")

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        """Starts Spark on the first call (about 7 s): a failure to start is one
        ExecutorError for the whole run, raised here."""
        if self._log_dirs:
            self._start(self._log_dirs[0])
            self._flush()
            self.capacity()  # counted while steps run too: a loss is dated when it happens
        return self._book.wait([h.key for h in handles], max(0.0, timeout))

    def cancel(self, handles: Sequence[Handle]) -> None:
        self._cancel([h.key for h in handles])

    def close(self) -> None:
        self._cancel(self._book.live_keys())
        if self._task is None:
            return  # never started: nothing ran
        deadline = time.monotonic() + self.settings.grace_seconds + 5
        while not self._book.idle() and time.monotonic() < deadline:
            self._book.wait([], 0.1)
        for thread in list(self._jobs.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._channel is not None:
            self._channel.close()
        self._engine.stop()  # ends the executors' tasks still running, if any

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        """Nothing to do: a task ends its step when it loses the driver's channel, and
        the driver ended with the process that recorded these handles."""
        why = "its Spark driver ended with the run; the task ends the step when it loses it"
        return [Recovered(h.key, False, why) for h in handles]

    def started(self, handles: Sequence[Handle]) -> list[str]:
        """The invocations whose task has claimed them (not those still queued in Spark)."""
        return self._book.running([h.key for h in handles])

    def capacity(self) -> Capacity:
        """How many executors the cluster gives this application now (0 once its workers
        stopped); unbounded before Spark starts and for a local master."""
        now = time.monotonic()
        if now - self._capacity_at >= _CAPACITY_EVERY:
            self._capacity_at = now
            try:
                count = self._engine.executors()
            except ExecutorError:
                return self._capacity  # the driver busy or stopping: the last answer
            why = (
                "no Spark executor is registered with the driver "
                f"(master {self.settings.master}: are its workers alive?)"
            )
            idle = self._idle.idle(count)
            self._capacity = Capacity(count, why, self.settings.no_capacity_timeout, idle)
        return self._capacity

    # -- internals -----------------------------------------------------------------------
    def _start(self, log_dir: Path) -> None:
        """The SparkContext (its driver log goes beside the first step's log), then the
        channel on the driver's address."""
        if self._task is not None:
            return
        self._engine.start(log_dir)
        self._idle.started()
        host, bind = self._engine.driver_addresses()
        token = secrets.token_urlsafe(24)
        channel = Channel(self._book, token, self.settings.grace_seconds, self.settings.scratch_dir)
        try:
            port = channel.open(bind, self.settings.task_port)
        except OSError as exc:
            where = f"{bind} port {self.settings.task_port}" if self.settings.task_port else bind
            raise ExecutorError(
                f"cannot listen for Spark tasks on {where} (the driver's address): {exc}; "
                "set spark.driver.host in executors.spark.conf, or another task_port"
            ) from exc
        self._channel = channel
        self._task = functools.partial(worker.run_pack, (host, port), token)

    def _flush(self) -> None:
        if self._task is None:
            return
        self._batches += 1
        group = f"conveyor-{self._tag}-{self._batches}"
        sids = self._book.take_buffer(group)
        if not sids:
            return
        size = packing.per_task(self.settings.datums_per_task, len(sids), self._engine.cores())
        packs = packing.packs(sids, size)
        thread = threading.Thread(
            target=self._run_job, args=(group, packs, self._task), name=group, daemon=True
        )
        self._jobs[group] = thread
        thread.start()

    def _run_job(self, group: str, packs: list[str], task: TaskFunction) -> None:
        """Runs in a driver thread: the batch's job, then whatever it did not finish is lost."""
        message = None
        try:
            self._engine.run_batch(group, packs, task)
        except Exception as exc:  # py4j, pyspark and socket errors alike end the job
            message = f"the Spark job running the step failed: {first_line(exc)}"
        self._book.job_ended(group, message)
        self._jobs.pop(group, None)

    def _cancel(self, keys: list[str]) -> None:
        notify, finished = self._book.cancel(keys)
        for stop in notify:
            stop()
        for group in finished:
            self._engine.cancel_group(group)
