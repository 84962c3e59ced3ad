"""What the HTCondor executor knows of each job it submitted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conveyor.executors.base import EndState, Invocation

MISSING_LIMIT = 2
"""Queries in a row without the job before it counts as lost."""
VANISHED = "the job left the HTCondor queue without a result (removed outside Conveyor?)"


@dataclass
class Job:
    invocation: Invocation
    name: str
    outputs: list[str]
    iwd: Path | None = None
    job_id: str | None = None
    """``cluster.proc`` once submitted."""
    notes: list[str] = field(default_factory=list)
    missing: int = 0
    result: dict[str, Any] | None = None
    """The job ad once it completed (its output still in the schedd's spool)."""
    completed_at: float = 0.0
    queued_at: float = 0.0
    started: bool = False
    """HTCondor started the job (Running, or it has run)."""
    asked: bool = False
    """Conveyor asked why no machine matches it (once, after ``no_match_after``)."""
    unmatched: str | None = None
    """The answer, when no machine matches."""
    ad: dict[str, Any] | None = None
    """Its last job ad from the schedd."""
    interpreter: str | None = None
    """The worker's Python that ran a Python step, with its version."""


Ending = EndState | Literal["unmatched"]
"""How the executor sees a job end: ``unmatched`` is an error that is not retried."""


def ran_on(job: Job) -> dict[str, str] | None:
    """The job's id and the slot it ran on (``slot1@host``), from its last ad."""
    slot = str((job.ad or {}).get("LastRemoteHost") or "")
    if not job.job_id or not slot:
        return None
    host = slot.rpartition("@")[2]
    ran_on = {"job": job.job_id, "slot": slot, "host": host}
    if job.interpreter:
        ran_on["interpreter"] = job.interpreter
    return ran_on
