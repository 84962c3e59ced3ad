"""Waiting for a Pachyderm job to end (``conveyor job wait``): the job's record is read
again at a bounded rate (its file in the project's state, written by the process that
runs it) until its state is final; a job whose process died is ``interrupted``.

The clock and the sleep are given, so a test steps through states without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConveyorError

FINAL = ("success", "failed", "interrupted")
FIRST_POLL = 0.1  # seconds; doubles up to MAX_POLL while nothing changes
MAX_POLL = 2.0


class JobWaitTimeout(ConveyorError):
    """``--timeout`` expired while the job still ran (exit code 3: not the job's failure)."""

    exit_code = 3


@dataclass(frozen=True)
class Progress:
    """How far a job is: its datums by state, and how many there are."""

    job: str
    state: str
    counts: dict[str, int]
    total: int

    @property
    def done(self) -> int:
        return sum(n for s, n in self.counts.items() if s != "pending")

    def line(self) -> str:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()) if s != "pending")
        return f"job {self.job[:12]} {self.state}: {self.done}/{self.total} datums done" + (
            f" ({detail})" if detail else ""
        )


def progress_of(job: dict[str, Any]) -> Progress:
    counts: dict[str, int] = {}
    for row in job.get("datums", []):
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return Progress(job["id"], job["state"], counts, len(job.get("datums", [])))


def wait_job(
    read: Callable[[], dict[str, Any]],
    timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The job's record once its state is final (``read`` returns it afresh each time);
    ``on_progress`` gets each change of its state or datum counts. JobWaitTimeout when
    ``timeout`` seconds pass first."""
    deadline = None if timeout is None else clock() + timeout
    interval = FIRST_POLL
    last: Progress | None = None
    while True:
        job = read()
        now = progress_of(job)
        if now != last:
            if on_progress is not None:
                on_progress(now)
            last, interval = now, FIRST_POLL
        if job["state"] in FINAL:
            return job
        if deadline is not None and clock() >= deadline:
            raise JobWaitTimeout(
                f"job {job['id'][:12]} is still {job['state']} after {timeout:g} s "
                f"({now.done}/{now.total} datums done); wait again, or `conveyor job inspect`"
            )
        pause = interval if deadline is None else min(interval, max(0.0, deadline - clock()))
        sleep(pause)
        interval = min(interval * 2, MAX_POLL)
