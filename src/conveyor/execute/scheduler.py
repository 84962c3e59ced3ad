"""What is left to do, decided from events alone: no processes, clocks or files.

Each step waits for its dependencies to reach a final state, then its run policy
decides: ``success()`` runs when no dependency is *tainted*, ``failure()`` runs when
one is, ``always()`` runs regardless. A step is tainted when it failed (unless it may
fail: ``allow_failure``), or when any of its dependencies is tainted (so a failure is
seen by everything downstream, including through a ``failure()`` step that handled it).
At most ``parallelism`` steps run at once. Before its policy, a step's conditions
(Drone's ``trigger``/``when``/``platform``) are checked against the run's facts: an unmet
one skips it with the reason, and, like any skip, taints nothing downstream.
"""

from __future__ import annotations

import heapq

from conveyor.domain.conditions import RunFacts, unmet_reason
from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute.events import (
    Cancel,
    CancelRequested,
    Decision,
    Event,
    Finished,
    Launch,
    Skip,
    StepCancelled,
    StepFailed,
    StepSucceeded,
)
from conveyor.plan.model import ExecutionPlan


class SchedulerError(RuntimeError):
    """An event that does not fit the current state (a runner bug, not user input)."""


class Scheduler:
    def __init__(
        self, plan: ExecutionPlan, parallelism: int, facts: RunFacts | None = None
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.parallelism = parallelism
        self._facts = facts or RunFacts()
        self._steps = {s.id: s for s in plan.steps}
        self._order = [s.id for s in plan.steps]
        self._rank = {step_id: i for i, step_id in enumerate(self._order)}
        self._dependents: dict[str, list[str]] = {s.id: [] for s in plan.steps}
        for step in plan.steps:
            for dep in step.needs:
                self._dependents[dep].append(step.id)
        self._waiting = {s.id: len(s.needs) for s in plan.steps}
        self.status: dict[str, StepStatus] = {s.id: StepStatus.QUEUED for s in plan.steps}
        self.attempts: dict[str, int] = {s.id: 0 for s in plan.steps}
        self._tainted: dict[str, bool] = {}
        self._ready: list[int] = []
        self._running: set[str] = set()
        self._cancelling = False
        self._finished = False
        self._failed = False  # a step failed or its executor cancelled it (kept, not rescanned)

    # -- public --------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def start(self) -> list[Decision]:
        decisions: list[Decision] = []
        # a snapshot: a skip below may release a step that is then enqueued by _release
        roots = [step_id for step_id, count in self._waiting.items() if count == 0]
        for step_id in roots:
            self._enqueue_or_skip(step_id, decisions)
        return self._fill(decisions)

    def handle(self, event: Event) -> list[Decision]:
        if self._finished:
            raise SchedulerError(f"event {event} after the run finished")
        decisions: list[Decision] = []
        if isinstance(event, CancelRequested):
            self._cancel_all(event.reason, decisions)
        elif isinstance(event, StepSucceeded):
            self._end(event.step_id, StepStatus.SUCCEEDED, decisions)
        elif isinstance(event, StepFailed):
            step = self._step_running(event.step_id)
            if (
                event.retryable
                and not self._cancelling
                and self.attempts[step] <= self._steps[step].retries
            ):
                self.attempts[step] += 1
                decisions.append(Launch(step, self.attempts[step]))
                return decisions
            self._end(step, StepStatus.FAILED, decisions)
        elif isinstance(event, StepCancelled):
            self._end(event.step_id, StepStatus.CANCELLED, decisions)
        return self._fill(decisions)

    # -- internals -----------------------------------------------------------
    def _step_running(self, step_id: str) -> str:
        if step_id not in self._running:
            raise SchedulerError(f"step {step_id} is not running")
        return step_id

    def _end(self, step_id: str, status: StepStatus, decisions: list[Decision]) -> None:
        self._step_running(step_id)
        self._running.discard(step_id)
        self.status[step_id] = status
        own_failure = self._counts_as_failure(step_id, status)
        self._failed = self._failed or own_failure
        self._tainted[step_id] = own_failure or self._deps_tainted(step_id)
        self._release(step_id, decisions)

    def _release(self, step_id: str, decisions: list[Decision]) -> None:
        for child in self._dependents[step_id]:
            self._waiting[child] -= 1
            if self._waiting[child] == 0 and self.status[child] == StepStatus.QUEUED:
                self._enqueue_or_skip(child, decisions)

    def _counts_as_failure(self, step_id: str, status: StepStatus) -> bool:
        if status == StepStatus.FAILED and self._steps[step_id].allow_failure:
            return False  # `continue-on-error` / Drone's `failure: ignore`
        return status in (StepStatus.FAILED, StepStatus.CANCELLED)

    def _deps_tainted(self, step_id: str) -> bool:
        return any(self._tainted.get(dep, False) for dep in self._steps[step_id].needs)

    def _enqueue_or_skip(self, step_id: str, decisions: list[Decision]) -> None:
        if self._cancelling:
            self._skip(step_id, StepStatus.CANCELLED, "the run was cancelled", decisions)
            return
        unmet = unmet_reason(self._steps[step_id].conditions, self._facts)
        tainted = self._deps_tainted(step_id)
        policy = self._steps[step_id].policy
        if unmet is not None:
            self._skip(step_id, StepStatus.SKIPPED, unmet, decisions)
        elif policy == "success" and tainted:
            self._skip(step_id, StepStatus.SKIPPED, "an upstream step failed", decisions)
        elif policy == "failure" and not tainted:
            self._skip(step_id, StepStatus.SKIPPED, "no upstream step failed", decisions)
        else:
            heapq.heappush(self._ready, self._rank[step_id])

    def _skip(
        self, step_id: str, status: StepStatus, reason: str, decisions: list[Decision]
    ) -> None:
        self.status[step_id] = status
        self._failed = self._failed or self._counts_as_failure(step_id, status)
        self._tainted[step_id] = self._deps_tainted(step_id)
        decisions.append(Skip(step_id, status, reason))
        self._release(step_id, decisions)

    def _cancel_all(self, reason: str, decisions: list[Decision]) -> None:
        if self._cancelling:
            return
        self._cancelling = True
        while self._ready:
            step_id = self._order[heapq.heappop(self._ready)]
            self._skip(step_id, StepStatus.CANCELLED, reason, decisions)
        decisions.extend(Cancel(s) for s in sorted(self._running, key=self._rank.__getitem__))

    def _fill(self, decisions: list[Decision]) -> list[Decision]:
        while self._ready and len(self._running) < self.parallelism and not self._cancelling:
            step_id = self._order[heapq.heappop(self._ready)]
            self._running.add(step_id)
            self.status[step_id] = StepStatus.RUNNING
            self.attempts[step_id] = 1
            decisions.append(Launch(step_id, 1))
        idle = not self._running and not self._ready and not self._finished
        if idle and all(s.finished for s in self.status.values()):
            self._finished = True
            decisions.append(Finished(self._run_status()))
        return decisions

    def _run_status(self) -> RunStatus:
        if self._cancelling:
            return RunStatus.CANCELLED
        # a step its executor cancelled (not the user) did not do its work: the run failed
        return RunStatus.FAILED if self.failed_so_far() else RunStatus.SUCCEEDED

    def failed_so_far(self) -> bool:
        """Whether a step has failed (or its executor cancelled it) in this run yet."""
        return self._failed
