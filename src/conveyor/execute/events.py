"""Facts the runner feeds the scheduler, and the decisions the scheduler returns."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.domain.states import RunStatus, StepStatus


# -- events (what happened) ----------------------------------------------------
@dataclass(frozen=True)
class StepSucceeded:
    step_id: str
    cached: bool = False


@dataclass(frozen=True)
class StepFailed:
    step_id: str
    retryable: bool = True
    """False when a retry cannot help (e.g. a declared input is missing)."""


@dataclass(frozen=True)
class StepCancelled:
    step_id: str


@dataclass(frozen=True)
class CancelRequested:
    reason: str = "cancelled"


Event = StepSucceeded | StepFailed | StepCancelled | CancelRequested


# -- decisions (what to do next) -------------------------------------------------
@dataclass(frozen=True)
class Launch:
    step_id: str
    attempt: int
    """1 for the first attempt, 2 for the first retry..."""


@dataclass(frozen=True)
class Skip:
    step_id: str
    status: StepStatus
    """SKIPPED (its run policy says no) or CANCELLED (the run was cancelled)."""
    reason: str


@dataclass(frozen=True)
class Cancel:
    step_id: str


@dataclass(frozen=True)
class Finished:
    status: RunStatus


Decision = Launch | Skip | Cancel | Finished
