"""Waiting for a Pachyderm job over a scripted sequence of its records, on a fake clock:
each change of state or datum counts reported once, the poll interval bounded, a final
state returned, a timeout raised with exit code 3 while the job runs."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.sdk.pachyderm_wait import (
    MAX_POLL,
    JobWaitTimeout,
    Progress,
    progress_of,
    wait_job,
)


def job(state: str, *datums: str) -> dict[str, Any]:
    return {"id": "f" * 32, "state": state, "datums": [{"state": s} for s in datums]}


class Script:
    """``read`` returns the next record (the last one forever); the clock moves only when
    ``sleep`` is called."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.reads = 0
        self.now = 0.0
        self.sleeps: list[float] = []

    def read(self) -> dict[str, Any]:
        record = self.records[min(self.reads, len(self.records) - 1)]
        self.reads += 1
        return record

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_each_change_is_reported_once_and_the_final_record_returned() -> None:
    script = Script(
        [
            job("running", "pending", "pending"),
            job("running", "pending", "pending"),
            job("running", "success", "pending"),
            job("running", "success", "pending"),
            job("success", "success", "skipped"),
        ]
    )
    seen: list[Progress] = []
    ended = wait_job(script.read, None, seen.append, script.sleep, script.clock)
    assert ended["state"] == "success"
    assert [p.line() for p in seen] == [
        "job ffffffffffff running: 0/2 datums done",
        "job ffffffffffff running: 1/2 datums done (1 success)",
        "job ffffffffffff success: 2/2 datums done (1 skipped, 1 success)",
    ]
    assert script.reads == 5 and len(script.sleeps) == 4
    assert script.sleeps[1] > script.sleeps[0]  # nothing changed: it backs off
    assert script.sleeps[2] < script.sleeps[1]  # a change: it looks again soon


def test_a_job_that_ended_returns_without_sleeping() -> None:
    for state in ("failed", "interrupted"):
        script = Script([job(state, "failed")])
        assert wait_job(script.read, 5, None, script.sleep, script.clock)["state"] == state
        assert script.sleeps == []


def test_the_poll_interval_is_bounded_and_a_timeout_is_exit_code_3() -> None:
    script = Script([job("running", "pending")])
    with pytest.raises(JobWaitTimeout, match="still running after 30 s") as raised:
        wait_job(script.read, 30, None, script.sleep, script.clock)
    assert raised.value.exit_code == 3
    assert max(script.sleeps) <= MAX_POLL
    assert script.now == pytest.approx(30)  # the last sleep stops at the deadline


def test_progress_counts_datums_by_state() -> None:
    progress = progress_of(job("running", "failed", "success", "pending"))
    assert (progress.done, progress.total, progress.counts["failed"]) == (2, 3, 1)
