"""How the runner tells the outside what happens (the CLI renders it; tests record it)."""

from __future__ import annotations

from typing import Protocol

from conveyor.domain.states import RunStatus
from conveyor.metadata.records import RunRecord, StepRunRecord
from conveyor.plan.model import ExecutionPlan


class Reporter(Protocol):
    def run_started(self, run: RunRecord, plan: ExecutionPlan) -> None: ...

    def step_started(self, step_id: str, attempt: int) -> None: ...

    def step_finished(self, record: StepRunRecord) -> None: ...

    def run_finished(self, run: RunRecord, status: RunStatus) -> None: ...


class SilentReporter:
    def run_started(self, run: RunRecord, plan: ExecutionPlan) -> None:
        pass

    def step_started(self, step_id: str, attempt: int) -> None:
        pass

    def step_finished(self, record: StepRunRecord) -> None:
        pass

    def run_finished(self, run: RunRecord, status: RunStatus) -> None:
        pass
