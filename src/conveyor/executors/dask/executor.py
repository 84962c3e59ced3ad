"""Run step invocations as tasks of a Dask cluster (``dask.distributed``).

One ``Client`` per executor, connected on the first poll. ``submit`` only records the
invocation; ``poll`` hands what was recorded to the scheduler (one task per invocation,
fire-and-forget, so that a step outlives a dead submitter as on a batch system and
``recover`` ends it), then returns the tasks that finished: their log and outputs
written into the project. ``cancel`` marks the tasks stopped on every worker (a running
step gets TERM, then KILL after the grace period) and cancels those not yet started.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import secrets
import threading
import time
import types
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.executors.base import (
    UNBOUNDED,
    Capacity,
    Completion,
    EndState,
    Handle,
    IdleClock,
    Invocation,
    Recovered,
)
from conveyor.executors.dask import resources, task
from conveyor.executors.dask.files import input_files, write_outputs
from conveyor.executors.dask.settings import DaskSettings

_CAPACITY_EVERY = 1.0
"""Seconds an answer of ``capacity`` is reused."""
_CONFIRM_FOR = 10.0
"""Seconds ``poll`` waits for the scheduler to know the tasks it handed over."""
_INLINE_INPUTS = 1 << 20
"""Bytes of input files sent inside the task itself; more are scattered first."""
_PREFIX = "conveyor-"
_PENDING = {"released", "waiting", "queued", "no-worker", "processing"}


class DaskExecutor:
    name = "dask"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = DaskSettings.parse(settings or {})
        if importlib.util.find_spec("distributed") is None:  # imported on first use: slow
            raise ExecutorError(
                "the dask executor needs packages that are not installed (distributed); "
                "install them with: pip install 'conveyor[dask]'"
            )
        self.default_parallelism = self.settings.parallelism
        self._client: Any = None
        self._run_step: Any = None
        self._tag = secrets.token_hex(4)
        self._count = 0
        self._buffer: list[tuple[str, Invocation]] = []
        self._live: dict[str, tuple[str, Invocation, Any]] = {}
        """By invocation key: the task's key, the invocation, its future."""
        self._cancelled: set[str] = set()
        self._dropped: dict[str, Completion] = {}  # cancelled before poll handed them over
        self._started: dict[str, tuple[str, float]] = {}
        """Task key -> (its worker's address, when we heard): filled by the client's thread."""
        self._streams: dict[str, tuple[Invocation, int]] = {}
        """Task key -> (its invocation, log bytes written so far): live logs, appended by
        the client's thread from the task's log events until the task's result comes."""
        self._workers: set[str] = set()
        self._offers: dict[str, dict[str, float]] = {}
        """Worker address -> the resources it declares (``--resources``)."""
        self._asked: dict[str, dict[str, float]] = {}
        """Invocation key -> the resources its task asked for (when it asked)."""
        self._unfit: dict[str, float] = {}
        """Invocation key -> since when no worker of the cluster could run its task."""
        self._workers_at = -_CAPACITY_EVERY  # when ``_workers`` was asked for
        self._lock = threading.Lock()
        self._finished = threading.Event()  # set by futures' done callbacks
        self._capacity = UNBOUNDED
        self._idle = IdleClock(self.settings.start_grace)

    # -- the contract --------------------------------------------------------------------
    def submit(self, invocation: Invocation) -> Handle:
        invocation.log_path.parent.mkdir(parents=True, exist_ok=True)
        invocation.log_path.touch()
        self._count += 1
        task_key = f"{_PREFIX}{self._tag}-{self._count}"
        self._buffer.append((task_key, invocation))
        return Handle(invocation.key, task_key)

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        """Connects on the first call: an unreachable scheduler is one ExecutorError, and
        so is losing it for good (the client gave up reconnecting)."""
        if self._client is not None and self._client.status == "closed":
            raise ExecutorError(
                f"lost the connection to the Dask scheduler {self.settings.scheduler}; "
                "its tasks are gone with it"
            )
        if self._buffer:
            self._flush()
        done = [self._dropped.pop(h.key) for h in handles if h.key in self._dropped]
        futures = [self._live[h.key][2] for h in handles if h.key in self._live]
        self._finished.clear()
        if timeout > 0 and not done and not any(f.done() for f in futures):
            self._finished.wait(timeout)  # any task's end wakes it: then look again
        lost = self._lost()
        unfit = self._unfit_now()
        for handle in handles:
            entry = self._live.get(handle.key)
            if entry is not None and entry[0] in lost:
                done.append(self._lose(handle.key, entry[0], lost[entry[0]]))
            elif entry is not None and handle.key in unfit:
                done.append(self._refuse(handle.key, entry[0], unfit[handle.key]))
            elif entry is not None and entry[2].done():
                done.append(self._complete(handle.key, *entry))
        return done

    def cancel(self, handles: Sequence[Handle]) -> None:
        keys = [h.key for h in handles if h.key in self._live or self._buffered(h.key)]
        self._cancelled.update(keys)
        for _, inv in self._buffer:  # never handed over: ended here, reported by poll
            if inv.key in self._cancelled:
                self._dropped[inv.key] = Completion(inv.key, "cancelled", None, "cancelled")
        self._buffer = [(t, inv) for t, inv in self._buffer if inv.key not in self._dropped]
        live = [self._live[k] for k in keys if k in self._live]
        if not live or self._client is None:
            return
        task_keys = [t for t, _, _ in live]
        self._client.run(task.stop_steps, task_keys, on_error="ignore")
        # not yet started: no thread to wait for; started ones report through their task
        with self._lock:
            queued = [f for t, _, f in live if t not in self._started]
        if queued:
            self._client.cancel(queued, force=True)

    def close(self) -> None:
        if self._client is None:
            return
        live = [Handle(k, t) for k, (t, _, _) in self._live.items()]
        with contextlib.suppress(Exception):  # best effort: the cluster may be gone
            self.cancel(live)
        with contextlib.suppress(Exception):
            self._client.close(timeout=self.settings.connect_timeout)
        self._client = None

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        """Stop, on every worker, the tasks a dead process left (their keys are the handles'
        ``backend_id``); a task still queued is marked so that it never starts its step."""
        ours = [h.backend_id for h in handles if h.backend_id.startswith(_PREFIX)]
        running: set[str] = set()
        pending: set[str] = set()
        if ours:
            client = self._connect()
            for found in client.run(task.stop_steps, ours, on_error="ignore").values():
                if isinstance(found, list):
                    running.update(found)
            states = client.run_on_scheduler(task.task_states, keys=ours)
            pending = {k for k, state in states.items() if state in _PENDING}
        answers = []
        for h in handles:
            if h.backend_id in running:
                answers.append(Recovered(h.key, True, "its running Dask task was told to stop"))
            elif h.backend_id in pending:
                answers.append(Recovered(h.key, True, "its queued Dask task will not start"))
            elif h.backend_id.startswith(_PREFIX):
                answers.append(Recovered(h.key, False, "no Dask task of it is left"))
            else:
                answers.append(Recovered(h.key, False, "not a Dask task's key"))
        return answers

    def started(self, handles: Sequence[Handle]) -> list[str]:
        """The invocations whose task has started its step (its worker said so)."""
        with self._lock:
            return [
                h.key
                for h in handles
                if h.key in self._live and self._live[h.key][0] in self._started
            ]

    def capacity(self) -> Capacity:
        """Threads of the workers connected to the scheduler (0 when none is)."""
        self._ask_workers()
        return self._capacity

    # -- internals -----------------------------------------------------------------------
    def _ask_workers(self, force: bool = False) -> None:
        """The scheduler's workers, at most once per ``_CAPACITY_EVERY``: capacity, the
        resources they offer, and which started steps lost their worker."""
        now = time.monotonic()
        if self._client is None or (now - self._workers_at < _CAPACITY_EVERY and not force):
            return
        if self._client.status != "running":
            return  # reconnecting: its view of the workers is empty, not an answer
        try:
            workers = self._client.scheduler_info(n_workers=-1)["workers"]
        except Exception:
            return  # the scheduler busy or gone: the last answer
        self._workers_at = now
        self._workers = set(workers)
        self._offers = {
            str(a): {str(k): float(v) for k, v in (w.get("resources") or {}).items()}
            for a, w in workers.items()
        }
        slots = sum(int(w.get("nthreads", 0)) for w in workers.values())
        why = f"no Dask worker is connected to the scheduler {self.settings.scheduler}"
        idle = self._idle.idle(slots)
        self._capacity = Capacity(slots, why, self.settings.no_capacity_timeout, idle)

    def _lost(self) -> dict[str, str]:
        """Started tasks whose worker has left since they started (Dask would run them
        again elsewhere; a step is run again only by the runner's ``retries``)."""
        self._ask_workers()
        with self._lock:
            return {
                task_key: address
                for task_key, (address, heard) in self._started.items()
                if heard < self._workers_at and address not in self._workers
            }

    def _lose(self, key: str, task_key: str, address: str) -> Completion:
        _, _, future = self._live.pop(key)
        self._forget(key, task_key)
        with contextlib.suppress(Exception):  # best effort: no second run of the step
            self._client.run(task.stop_steps, [task_key], on_error="ignore")
            self._client.cancel([future], force=True)
        why = f"the Dask worker running the step ({address}) left the cluster"
        return Completion(key, "lost", None, why)

    def _unfit_now(self) -> dict[str, str]:
        """Queued steps that no worker of the cluster can run (the resources they ask for
        exceed every worker's), for ``no_capacity_timeout``: the reason for each. A
        cluster with no worker at all is ``capacity``'s case, not this one."""
        if not self._offers or not self._asked:
            return {}
        now = time.monotonic()
        with self._lock:
            started = set(self._started)
        found = {}
        for key, asked in self._asked.items():
            entry = self._live.get(key)
            if entry is None or entry[0] in started or resources.fits(asked, self._offers):
                self._unfit.pop(key, None)
                continue
            since = self._unfit.setdefault(key, now)
            if now - since >= self.settings.no_capacity_timeout:
                found[key] = (
                    f"no Dask worker can run the step: it asks for {resources.describe(asked)} "
                    f"and the workers declare {resources.describe_offers(self._offers)} "
                    f"(waited {self.settings.no_capacity_timeout:g}s, no_capacity_timeout); "
                    "start workers with matching --resources or lower the step's resources"
                )
        return found

    def _refuse(self, key: str, task_key: str, why: str) -> Completion:
        _, _, future = self._live.pop(key)
        self._forget(key, task_key)
        with contextlib.suppress(Exception):  # best effort: it never started
            self._client.cancel([future], force=True)
        return Completion(key, "error", None, why)

    def _forget(self, key: str, task_key: str) -> None:
        self._asked.pop(key, None)
        self._unfit.pop(key, None)
        self._cancelled.discard(key)
        with self._lock:
            self._started.pop(task_key, None)
            self._streams.pop(task_key, None)

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        cloudpickle = importlib.import_module("cloudpickle")  # untyped, like distributed
        distributed = importlib.import_module("distributed")
        # a lost scheduler is our own one-sentence error (poll), not the client's traceback
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        # the task goes by value: workers need no Conveyor install
        cloudpickle.register_pickle_by_value(task)
        try:
            client = distributed.Client(
                self.settings.scheduler,
                timeout=self.settings.connect_timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"cannot reach the Dask scheduler {self.settings.scheduler} ({exc}); start "
                "it or fix executors.dask.scheduler in .conveyor/config.toml"
            ) from exc
        client.subscribe_topic(task.STARTED_TOPIC, self._on_started)
        client.subscribe_topic(task.LOG_TOPIC, self._on_log)
        self._run_step = _by_value(task.run_step)
        self._client = client
        self._idle.started()
        return client

    def _on_started(self, event: tuple[float, Any]) -> None:
        task_key, address = event[1]
        with self._lock:
            self._started[str(task_key)] = (str(address), time.monotonic())

    def _on_log(self, event: tuple[float, Any]) -> None:
        """A running step's new output: appended to its log when it follows what was
        written (a lost or repeated event is skipped; the result fills the rest)."""
        try:
            task_key, offset, data = event[1]
        except (TypeError, ValueError):
            return
        with self._lock:
            stream = self._streams.get(str(task_key))
            if stream is None or offset != stream[1] or not isinstance(data, bytes):
                return
            inv, written = stream
            with open(inv.log_path, "ab") as log:
                log.write(data)
            self._streams[str(task_key)] = (inv, written + len(data))

    def _buffered(self, key: str) -> bool:
        return any(inv.key == key for _, inv in self._buffer)

    def _flush(self) -> None:
        fire_and_forget = importlib.import_module("distributed").fire_and_forget
        client = self._connect()
        self._ask_workers(force=not self._offers)  # what the workers declare, before asking
        declared = resources.declared_names(self._offers)
        buffer, self._buffer = self._buffer, []
        for task_key, inv in buffer:
            order = {
                "command": inv.command,
                "env": dict(inv.env),
                "outputs": list(inv.outputs),
                "grace": self.settings.grace_seconds,
                "scratch": self.settings.scratch_dir,
            }
            files: Any = input_files(inv)
            if sum(len(data) for _, _, data in files) > _INLINE_INPUTS:
                # big inputs go to a worker's memory directly, not inside the task graph
                files = client.scatter(files, hash=False)
            asked = resources.request(inv.resources, declared)
            if asked:
                self._asked[inv.key] = asked
            future = client.submit(
                self._run_step,
                task_key,
                order,
                files,
                key=task_key,
                pure=False,
                resources=asked or None,
            )
            future.add_done_callback(lambda _: self._finished.set())
            fire_and_forget(future)  # the step goes on if this process dies: recover ends it
            self._live[inv.key] = (task_key, inv, future)
            with self._lock:
                self._streams[task_key] = (inv, 0)
        self._confirm([t for t, _ in buffer])

    def _confirm(self, task_keys: list[str]) -> None:
        """Wait until the scheduler holds the new tasks (submission is asynchronous), so
        that a handle this process records names a task the cluster knows."""
        deadline = time.monotonic() + _CONFIRM_FOR
        while time.monotonic() < deadline:
            states = self._client.run_on_scheduler(task.task_states, keys=task_keys)
            if all(k in states for k in task_keys):
                return
            time.sleep(0.01)

    def _complete(self, key: str, task_key: str, inv: Invocation, future: Any) -> Completion:
        del self._live[key]
        self._asked.pop(key, None)
        self._unfit.pop(key, None)
        with self._lock:
            self._started.pop(task_key, None)
            _, written = self._streams.pop(task_key, (inv, 0))
        cancelled = key in self._cancelled
        self._cancelled.discard(key)
        if future.status == "cancelled" and cancelled:
            return Completion(key, "cancelled", None, "cancelled before it started")
        if future.status == "cancelled":  # not by us: the scheduler dropped it
            why = f"the Dask scheduler {self.settings.scheduler} dropped the task (did it restart?)"
            return Completion(key, "lost", None, why)
        if future.status == "error":
            exc = future.exception()
            kind = type(exc).__name__
            state: EndState = "lost" if kind == "KilledWorker" else "error"
            return Completion(key, state, None, f"the Dask task failed: {kind}: {exc}")
        result = future.result()
        with open(inv.log_path, "ab") as log:
            log.write(result["log"][written:])  # what the live events did not bring
        if result["code"] is None:
            return Completion(key, "cancelled", None, "cancelled before it started")
        try:
            write_outputs(inv, result["outputs"], task_key)
        except (OSError, ExecutorError) as exc:
            return Completion(key, "error", None, f"cannot store the step's outputs: {exc}")
        note = result["note"]
        if cancelled or note == "cancelled":
            return Completion(key, "cancelled", int(result["code"]), "cancelled")
        return Completion(key, "exited", int(result["code"]), note)


def _by_value(function: Any) -> Any:
    """A copy of ``function`` that pickle cannot find by name: Dask tries plain pickle first
    for a task graph, which would ship the task by reference (and fail on workers without
    Conveyor); the copy makes it fall back to cloudpickle, which ships it by value."""
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__
    )
    copy.__qualname__ = f"{function.__qualname__}.by_value"
    return copy
