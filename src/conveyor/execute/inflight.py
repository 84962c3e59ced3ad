"""The steps in flight at executors: indexed by handle (completions name it) and by step
(a cancel names the step), with their deadlines. Used by the runner loop's thread only.

A step waits at its executor (queued) until the executor says it ``started``: its
``timeout`` counts from then, its ``queue-timeout`` until then. Queued steps also fail
when their executor has had no ``capacity`` for its ``no_capacity_timeout``.

An executor whose poll or cancel raises (a lost pool, schedd or master) is broken: its
steps leave the flight at once, with its message, for the runner to fail."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.errors import ExecutorError
from conveyor.metadata.records import StepRunRecord
from conveyor.plan.model import StepPlan

if TYPE_CHECKING:  # types only: a no-op run loads no executor module
    from conveyor.executors.base import Completion, Executor, Handle


@dataclass(eq=False)  # a holder of services, never compared
class Active:
    """A step at its executor: its record, its handle and its deadlines."""

    step: StepPlan
    record: StepRunRecord
    executor: Executor
    handle: Handle
    timeout: float | None = None
    """The step's ``timeout``: seconds from its start."""
    queue_deadline: float | None = None
    """When the step fails if it has not started (``queue-timeout``), in the runner's clock."""
    submitted_at: float = 0.0
    """When it was submitted, in the runner's clock."""
    started_at: float | None = None
    """When its executor said it started, in the runner's clock."""
    deadline: float | None = None
    """When the step times out, in the runner's clock (set when it starts)."""
    stopped: tuple[str, bool] | None = None
    """Why the runner cancelled it and whether that may be retried (timeout, queue
    timeout, no capacity): its completion then fails the step with this reason."""

    def next_deadline(self) -> float | None:
        if self.stopped is not None:
            return None
        return self.deadline if self.started else self.queue_deadline

    @property
    def started(self) -> bool:
        return self.started_at is not None


class InFlight:
    """Kept indexed as steps come, start, stop and go, so that a turn of the runner costs
    what changed, not a pass over every step in flight (a thousand at a batch executor:
    a pass per completion grew with the square of the step count)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_key: dict[str, Active] = {}
        self._by_step: dict[str, str] = {}
        self._by_executor: dict[str, tuple[Executor, dict[str, Handle]]] = {}
        """Executor name -> it and the handles of its steps in flight."""
        self._queued: dict[str, dict[str, Active]] = {}
        """Executor name -> its steps not started yet (nor stopped), by handle key."""
        self._deadlines: list[tuple[float, int, str]] = []
        """A heap of (deadline, order, handle key); an entry whose step has gone or
        whose deadline changed since is dropped when it comes up."""
        self._order = itertools.count()
        self._broken: list[tuple[Active, str]] = []
        self.leftovers: list[tuple[str, Handle]] = []
        """(executor name, handle) of steps a broken executor could not remove."""
        self._idle_since: dict[str, float] = {}
        """Executor name -> since when it has reported no capacity."""
        self._began: list[Active] = []

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def add(self, active: Active) -> None:
        key, name = active.handle.key, active.executor.name
        self._by_key[key] = active
        self._by_step[active.step.id] = key
        self._by_executor.setdefault(name, (active.executor, {}))[1][key] = active.handle
        if not active.started and active.stopped is None:
            self._queued.setdefault(name, {})[key] = active
        self._push_deadline(active)

    def pop(self, key: str) -> Active | None:
        """The step a completion names; None when it is not ours (or already completed)."""
        active = self._by_key.pop(key, None)
        if active is not None:
            self._by_step.pop(active.step.id, None)
            name = active.executor.name
            mine = self._by_executor.get(name)
            if mine is not None:
                mine[1].pop(key, None)
                if not mine[1]:
                    del self._by_executor[name]
            self._unqueue(active)
        return active

    def _unqueue(self, active: Active) -> None:
        name = active.executor.name
        queued = self._queued.get(name)
        if queued is not None:
            queued.pop(active.handle.key, None)
            if not queued:
                del self._queued[name]

    def _push_deadline(self, active: Active) -> None:
        deadline = active.next_deadline()
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, next(self._order), active.handle.key))

    def _next_deadline(self) -> tuple[float, Active] | None:
        """The earliest deadline still in force and its step (stale entries dropped)."""
        while self._deadlines:
            deadline, _, key = self._deadlines[0]
            active = self._by_key.get(key)
            if active is not None and active.next_deadline() == deadline:
                return deadline, active
            heapq.heappop(self._deadlines)
        return None

    def cancel(self, step_id: str) -> bool:
        """Ask the step's executor to cancel it; False when the step is not in flight."""
        active = self._by_key.get(self._by_step.get(step_id, ""))
        if active is not None:
            self._cancel(active.executor, [active.handle])
        return active is not None

    def poll(self, timeout: float) -> list[Completion]:
        """Completions from every executor with work in flight (one waits, others peek)."""
        busy = [
            (executor, list(handles.values())) for executor, handles in self._by_executor.values()
        ]
        completions: list[Completion] = []
        for index, (executor, handles) in enumerate(busy):
            wait = timeout if index == len(busy) - 1 and not completions else 0.0
            try:
                completions += executor.poll(handles, wait)
            except (ExecutorError, OSError) as exc:
                self._break(executor, exc)
        return completions

    def timeout(self, cap: float) -> float:
        """How long a poll may wait: ``cap`` at most, and not past the next deadline."""
        first = self._next_deadline()
        if first is not None:
            return min(cap, max(0.0, first[0] - self._clock()))
        return cap

    def check_deadlines(self) -> None:
        """Note which queued steps started, then cancel the steps past their deadline and
        the queued steps of an executor without capacity for too long (each completion
        then fails its step with ``stopped``'s reason)."""
        self._note_started()
        self._check_capacity()
        now = self._clock()
        while (first := self._next_deadline()) is not None and first[0] <= now:
            heapq.heappop(self._deadlines)
            active = first[1]  # a failing cancel empties the flight: it stays consistent
            if active.started:
                self._stop(active, f"timed out after {active.timeout:g}s", retryable=True)
            else:
                why = (
                    f"did not start within its queue-timeout of {active.step.queue_timeout:g}s "
                    f"(it waited in the {active.executor.name} executor's queue)"
                )
                self._stop(active, why, retryable=False)

    def _waiting(self) -> dict[str, tuple[Executor, list[Active]]]:
        """The steps not yet started, by executor."""
        return {
            name: (next(iter(queued.values())).executor, list(queued.values()))
            for name, queued in self._queued.items()
        }

    def _note_started(self) -> None:
        for executor, actives in self._waiting().values():
            try:
                keys = set(executor.started([a.handle for a in actives]))
            except (ExecutorError, OSError) as exc:
                self._break(executor, exc)
                continue
            now = self._clock()
            for active in actives:
                if active.handle.key in keys and active.handle.key in self._by_key:
                    active.started_at = now
                    active.deadline = now + active.timeout if active.timeout else None
                    self._began.append(active)
                    self._unqueue(active)
                    self._push_deadline(active)

    def take_started(self) -> list[tuple[Active, float]]:
        """The steps whose executor said they started since the last call, each with the
        seconds it waited before."""
        began, self._began = self._began, []
        return [(a, max(0.0, (a.started_at or 0.0) - a.submitted_at)) for a in began]

    def _check_capacity(self) -> None:
        """Fail what waits at an executor that has had nowhere to run it for its patience."""
        waiting = self._waiting()
        for name in set(self._idle_since) - set(waiting):
            del self._idle_since[name]  # nothing waits there: start counting afresh
        for name, (executor, actives) in waiting.items():
            try:
                capacity = executor.capacity()
            except (ExecutorError, OSError) as exc:
                self._break(executor, exc)
                continue
            if capacity.slots != 0 or capacity.patience is None:
                self._idle_since.pop(name, None)
                continue
            since = self._idle_since.setdefault(name, self._clock())
            idle = capacity.idle if capacity.idle is not None else self._clock() - since
            if idle < capacity.patience:
                continue
            why = (
                f"the {name} executor has had no capacity for {capacity.patience:g}s "
                f"(no_capacity_timeout): {capacity.why or 'no slot to run the step'}"
            )
            for active in actives:
                if active.handle.key in self._by_key:
                    self._stop(active, why, retryable=False)

    def _stop(self, active: Active, why: str, retryable: bool) -> None:
        active.stopped = (why, retryable)
        self._unqueue(active)
        self._cancel(active.executor, [active.handle])

    def take_broken(self) -> list[tuple[Active, str]]:
        """The steps of executors that failed since the last call, each with the error."""
        broken, self._broken = self._broken, []
        return broken

    def _cancel(self, executor: Executor, handles: list[Handle]) -> None:
        try:
            executor.cancel(handles)
        except (ExecutorError, OSError) as exc:
            self._break(executor, exc)

    def _break(self, executor: Executor, error: Exception) -> None:
        """Take the executor's steps out of flight and remove what it still has, best
        effort: when that fails too, the error says the jobs may still be queued."""
        mine = [a for a in list(self._by_key.values()) if a.executor is executor]
        for active in mine:
            self.pop(active.handle.key)
        message = f"the executor {executor.name} failed: {error}"
        try:
            if mine:
                executor.cancel([a.handle for a in mine])
        except (ExecutorError, OSError) as exc:
            self.leftovers += [(executor.name, a.handle) for a in mine]
            message += (
                f"; removing its jobs failed too ({exc}): the next conveyor command "
                f"removes them (handles {', '.join(a.handle.backend_id for a in mine)})"
            )
        self._broken += [(active, message) for active in mine]
