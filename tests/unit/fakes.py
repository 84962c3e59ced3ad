"""A fake executor and a fake clock: the runner's seam, without processes or waiting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.executors.base import UNBOUNDED, Capacity, Completion, Handle, Invocation, Recovered

HANG = "hang"
"""An outcome: the invocation runs until it is cancelled."""
UNMATCHED = "unmatched"
"""An outcome: an error another attempt would repeat (no machine matches the job)."""


class FakeClock:
    """Monotonic seconds that move only when the fake executor waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeExecutor:
    """Runs nothing: each step ends as ``script`` says, per attempt (an exit code, or
    HANG); a zero exit writes the step's declared outputs. Waiting advances the clock."""

    clock: FakeClock
    script: Mapping[str, Sequence[int | str]] = field(default_factory=dict)
    name: str = "fake"
    default_parallelism: int = 4
    starts_containers: bool = False
    on_poll: Callable[[], None] | None = None
    fail_poll_after: int | None = None
    """Polls that answer before every later one raises ExecutorError (a lost pool)."""
    fail_cancel: bool = False
    """Cancelling raises ExecutorError too."""
    queued: Mapping[str, float] = field(default_factory=dict)
    """Step id -> seconds its invocations wait in the backend's queue before they start
    (``math.inf``: never); they end as ``script`` says only once started."""
    slots: int | None = None
    """What ``capacity`` answers (None: unbounded)."""
    patience: float | None = None
    """The ``no_capacity_timeout`` that ``capacity`` answers with."""
    idle_since: float | None = None
    """From when the executor counts its time without capacity (``Capacity.idle``);
    None: it leaves the count to the runner."""
    ran_on: Mapping[str, str] | None = None
    """Where its completions say the invocations ran."""
    submitted: list[Invocation] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    _ended: dict[str, Completion] = field(default_factory=dict)
    _starts_at: dict[str, float] = field(default_factory=dict)

    def submit(self, invocation: Invocation) -> Handle:
        self.submitted.append(invocation)
        step_id = invocation.env["CONVEYOR_STEP_ID"]
        attempt = int(invocation.env["CONVEYOR_ATTEMPT"])
        outcomes = self.script.get(step_id, (0,))
        outcome = outcomes[min(attempt, len(outcomes)) - 1]
        self._starts_at[invocation.key] = self.clock.now + self.queued.get(step_id, 0.0)
        if outcome == UNMATCHED:
            why = "no machine matches the job"
            self._ended[invocation.key] = Completion(invocation.key, "error", None, why, False)
        elif outcome != HANG:
            code = int(outcome)
            if code == 0:
                for rel in invocation.outputs:
                    path = Path(invocation.workdir, rel)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(f"{step_id} attempt {attempt}\n")
            self._ended[invocation.key] = Completion(
                invocation.key, "exited", code, ran_on=self.ran_on
            )
        return Handle(invocation.key, f"fake-{len(self.submitted)}")

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        if self.on_poll is not None:
            self.on_poll()
        if self.fail_poll_after is not None:
            if self.fail_poll_after <= 0:
                raise ExecutorError(f"executor {self.name}: the pool cannot be reached")
            self.fail_poll_after -= 1
        ready = [h.key for h in handles if h.key in self._ended]
        done = [self._ended.pop(k) for k in ready if self._begun(k) or self._cancelled(k)]
        if not done:
            self.clock.now += timeout  # waited the whole timeout for nothing
        return done

    def cancel(self, handles: Sequence[Handle]) -> None:
        if self.fail_cancel:
            raise ExecutorError(f"executor {self.name}: cannot remove jobs")
        for handle in handles:
            self.cancelled.append(handle.key)
            self._ended[handle.key] = Completion(handle.key, "cancelled", None, "cancelled")

    def close(self) -> None:
        pass

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        return [Recovered(h.key, False, "a fake executor leaves nothing behind") for h in handles]

    def started(self, handles: Sequence[Handle]) -> list[str]:
        return [h.key for h in handles if self._begun(h.key)]

    def _begun(self, key: str) -> bool:
        return self.clock.now >= self._starts_at.get(key, 0.0)

    def _cancelled(self, key: str) -> bool:
        return self._ended[key].state == "cancelled"

    def capacity(self) -> Capacity:
        why = "the fake pool has no slots" if self.slots == 0 else ""
        idle = None if self.idle_since is None else max(0.0, self.clock.now - self.idle_since)
        return Capacity(self.slots, why, self.patience, idle)


BUILT: list[dict[str, Any]] = []
"""The settings table each :class:`RecordingExecutor` was built with, in order."""
CLOSED: list[str] = []
"""The ``label`` setting of each :class:`RecordingExecutor` closed, in order."""


class RecordingExecutor:
    """Records the settings table it is built with in ``BUILT`` and its closing in
    ``CLOSED``; a true ``fail`` setting makes it refuse to load (an unreachable pool)."""

    default_parallelism = 1
    starts_containers = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        BUILT.append(dict(settings))
        self.label = str(settings.get("label", ""))
        if settings.get("fail"):
            raise ExecutorError(f"executor {self.label} cannot reach its pool")

    def submit(self, invocation: Invocation) -> Handle:
        raise NotImplementedError

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        raise NotImplementedError

    def cancel(self, handles: Sequence[Handle]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        CLOSED.append(self.label)

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        return [Recovered(h.key, False, "recorded") for h in handles]

    def started(self, handles: Sequence[Handle]) -> list[str]:
        raise NotImplementedError

    def capacity(self) -> Capacity:
        return UNBOUNDED
