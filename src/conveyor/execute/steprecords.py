"""The records of a step run at the moments the runner writes them: launched, served from
the cache, skipped. Pure: the runner decides when, these say what."""

from __future__ import annotations

import time

from conveyor.domain.jsonshape import TextList, json_text
from conveyor.domain.states import StepStatus
from conveyor.execute.events import Skip
from conveyor.metadata.records import CacheEntry, StepRunRecord
from conveyor.plan.model import StepPlan


def launched(run_id: str, step: StepPlan, attempt: int) -> StepRunRecord:
    """A step run that starts now (its preparation, then its executor)."""
    return StepRunRecord(
        run_id=run_id,
        step_id=step.id,
        job=step.job,
        status=StepStatus.RUNNING,
        attempt=attempt,
        started_at=time.time(),
        command=step.command,
    )


def served(record: StepRunRecord, entry: CacheEntry) -> None:
    """``record`` succeeded without running: its outputs came back from ``entry``'s run."""
    record.status = StepStatus.SUCCEEDED
    record.cached = True
    record.cached_from = entry.run_id
    record.attempt = 0
    record.ended_at = record.started_at
    record.exit_code = 0
    text = json_text(entry.outputs)  # the entry's text as read: written again as it is
    record.outputs = list(entry.outputs) if text is None else TextList(entry.outputs, text)


def skipped(run_id: str, step: StepPlan, decision: Skip) -> StepRunRecord:
    """A step run that never started (its policy said no, or the run was cancelled)."""
    return StepRunRecord(
        run_id=run_id,
        step_id=step.id,
        job=step.job,
        status=decision.status,
        command=step.command,
        ended_at=time.time(),
        error=decision.reason,
    )
