"""The steps in flight at executors: indexed by handle (completions name it) and by step
(a cancel names the step), with their deadlines. Used by the runner loop's thread only.

An executor whose poll or cancel raises (a lost pool, schedd or master) is broken: its
steps leave the flight at once, with its message, for the runner to fail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor.errors import ExecutorError
from conveyor.executors.base import Completion, Executor, Handle
from conveyor.metadata.records import StepRunRecord
from conveyor.plan.model import StepPlan


@dataclass
class Active:
    step: StepPlan
    record: StepRunRecord
    executor: Executor
    handle: Handle
    deadline: float | None
    """When the step times out, in the runner's clock (counted from its submit)."""
    timed_out: bool = False


class InFlight:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_key: dict[str, Active] = {}
        self._by_step: dict[str, str] = {}
        self._broken: list[tuple[Active, str]] = []
        self.leftovers: list[tuple[str, Handle]] = []
        """(executor name, handle) of steps a broken executor could not remove."""

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def add(self, active: Active) -> None:
        self._by_key[active.handle.key] = active
        self._by_step[active.step.id] = active.handle.key

    def pop(self, key: str) -> Active | None:
        """The step a completion names; None when it is not ours (or already completed)."""
        active = self._by_key.pop(key, None)
        if active is not None:
            self._by_step.pop(active.step.id, None)
        return active

    def cancel(self, step_id: str) -> bool:
        """Ask the step's executor to cancel it; False when the step is not in flight."""
        active = self._by_key.get(self._by_step.get(step_id, ""))
        if active is not None:
            self._cancel(active.executor, [active.handle])
        return active is not None

    def poll(self, timeout: float) -> list[Completion]:
        """Completions from every executor with work in flight (one waits, others peek)."""
        busy: dict[str, tuple[Executor, list[Handle]]] = {}
        for active in self._by_key.values():
            busy.setdefault(active.executor.name, (active.executor, []))[1].append(active.handle)
        completions: list[Completion] = []
        for index, (executor, handles) in enumerate(busy.values()):
            wait = timeout if index == len(busy) - 1 and not completions else 0.0
            try:
                completions += executor.poll(handles, wait)
            except (ExecutorError, OSError) as exc:
                self._break(executor, exc)
        return completions

    def timeout(self, cap: float) -> float:
        """How long a poll may wait: ``cap`` at most, and not past the next deadline."""
        deadlines = [a.deadline for a in self._by_key.values() if a.deadline and not a.timed_out]
        if deadlines:
            return min(cap, max(0.0, min(deadlines) - self._clock()))
        return cap

    def check_deadlines(self) -> None:
        """Cancel the steps past their deadline (their completion then says timed out)."""
        now = self._clock()
        for active in list(self._by_key.values()):  # a failing cancel empties the flight
            if active.handle.key not in self._by_key:
                continue  # taken out with its broken executor
            if active.deadline is not None and not active.timed_out and now >= active.deadline:
                active.timed_out = True
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
