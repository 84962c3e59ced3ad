"""The steps in flight at executors: indexed by handle (completions name it) and by step
(a cancel names the step), with their deadlines. Used by the runner loop's thread only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
            active.executor.cancel([active.handle])
        return active is not None

    def poll(self, timeout: float) -> list[Completion]:
        """Completions from every executor with work in flight (one waits, others peek)."""
        busy: dict[str, tuple[Executor, list[Handle]]] = {}
        for active in self._by_key.values():
            busy.setdefault(active.executor.name, (active.executor, []))[1].append(active.handle)
        completions: list[Completion] = []
        for index, (executor, handles) in enumerate(busy.values()):
            wait = timeout if index == len(busy) - 1 and not completions else 0.0
            completions += executor.poll(handles, wait)
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
        for active in self._by_key.values():
            if active.deadline is not None and not active.timed_out and now >= active.deadline:
                active.timed_out = True
                active.executor.cancel([active.handle])
