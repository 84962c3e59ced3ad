"""Facts the runner feeds the scheduler, and the decisions the scheduler returns.

Named tuples, not dataclasses: immutable, compared and printed the same, and built without
the generated methods each frozen dataclass compiles at import (six per class)."""

from typing import NamedTuple

from conveyor.domain.states import RunStatus, StepStatus


# -- events (what happened) ----------------------------------------------------
class StepSucceeded(NamedTuple):
    step_id: str
    cached: bool = False


class StepFailed(NamedTuple):
    step_id: str
    retryable: bool = True
    """False when a retry cannot help (e.g. a declared input is missing)."""


class StepCancelled(NamedTuple):
    step_id: str


class CancelRequested(NamedTuple):
    reason: str = "cancelled"


Event = StepSucceeded | StepFailed | StepCancelled | CancelRequested


# -- decisions (what to do next) -------------------------------------------------
class Launch(NamedTuple):
    step_id: str
    attempt: int
    """1 for the first attempt, 2 for the first retry..."""


class Skip(NamedTuple):
    step_id: str
    status: StepStatus
    """SKIPPED (its run policy says no) or CANCELLED (the run was cancelled)."""
    reason: str


class Cancel(NamedTuple):
    step_id: str


class Finished(NamedTuple):
    status: RunStatus


Decision = Launch | Skip | Cancel | Finished
