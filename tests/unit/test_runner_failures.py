"""An executor that fails after submission (a lost pool or master): the runner finalises
the run with the executor's error instead of dying mid-run."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute.reporting import SilentReporter
from conveyor.execute.runner import Runner, RunOptions
from conveyor.execute.workspace import Workspace
from conveyor.executors.base import Handle
from conveyor.metadata.records import RunRecord, StepRunRecord
from conveyor.metadata.sql import open_repository
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache
from tests.unit.fakes import HANG, UNMATCHED, FakeClock, FakeExecutor

POOLED = StepPlan(
    id="j.pooled", job="j", name="pooled", command="x", outputs=("a.txt",), executor="pool"
)
AFTER = StepPlan(
    id="j.after", job="j", name="after", command="y", needs=("j.pooled",), executor="pool"
)
HERE = StepPlan(id="j.here", job="j", name="here", command="z", outputs=("c.txt",))
LOST = "executor pool: the pool cannot be reached"


def run(
    root: Path,
    *steps: StepPlan,
    pool: dict[str, Any],
    here: dict[str, Any] | None = None,
    started: list[Runner] | None = None,
) -> tuple[RunStatus, RunRecord, dict[str, StepRunRecord], FakeExecutor]:
    clock = FakeClock()
    records = open_repository(f"sqlite:///{root / 'records.db'}")
    run = RunRecord("r1", "p", RunStatus.RUNNING, None, False, time.time())
    records.create_run(run)
    broken = FakeExecutor(clock, name="pool", **pool)
    local = FakeExecutor(clock, **(here or {}))
    (root / "project").mkdir()
    digests = DigestCache(root / "digests.db")
    runner = Runner(
        run,
        ExecutionPlan("p", (), steps),
        {"fake": local, "pool": broken},
        "fake",
        Workspace(root / "project", ContentStore(root / "store"), digests),
        records,
        root,
        SilentReporter(),
        RunOptions(),
        clock=clock,
    )
    if started is not None:
        started.append(runner)
    status = runner.execute()
    digests.close()
    stored = records.get_run("r1")
    assert stored is not None
    return status, stored, {s.step_id: s for s in records.step_runs("r1")}, broken


def test_a_poll_failure_finalises_the_run_with_the_executors_error(tmp_path: Path) -> None:
    status, stored, steps, broken = run(
        tmp_path, POOLED, AFTER, pool={"script": {"j.pooled": [HANG]}, "fail_poll_after": 2}
    )
    assert status == RunStatus.FAILED
    assert stored.status == RunStatus.FAILED and stored.ended_at is not None
    assert stored.error is not None and LOST in stored.error
    assert steps["j.pooled"].status == StepStatus.FAILED
    assert steps["j.pooled"].error is not None and LOST in steps["j.pooled"].error
    assert steps["j.pooled"].attempt == 1  # a broken executor is not retried
    assert steps["j.after"].status == StepStatus.SKIPPED
    assert broken.cancelled == ["r1/j.pooled/1"]  # what the pool still has is removed


def test_a_step_on_another_executor_still_completes(tmp_path: Path) -> None:
    status, stored, steps, _ = run(
        tmp_path,
        replace(POOLED, retries=2),
        HERE,
        pool={"script": {"j.pooled": [HANG]}, "fail_poll_after": 0},
    )
    assert status == RunStatus.FAILED
    assert steps["j.here"].status == StepStatus.SUCCEEDED
    assert steps["j.pooled"].status == StepStatus.FAILED and steps["j.pooled"].attempt == 1
    assert stored.error is not None and LOST in stored.error


def test_a_cancel_that_fails_too_is_said_in_the_error(tmp_path: Path) -> None:
    status, stored, steps, broken = run(
        tmp_path,
        POOLED,
        pool={"script": {"j.pooled": [HANG]}, "fail_poll_after": 1, "fail_cancel": True},
    )
    assert status == RunStatus.FAILED
    assert broken.cancelled == []
    error = steps["j.pooled"].error
    assert error is not None and LOST in error and "cannot remove jobs" in error
    assert stored.error == error


def test_the_run_summary_line_says_the_executors_error() -> None:
    from conveyor.cli.progress import PlainReporter

    out = io.StringIO()
    run = RunRecord("r1", "p", RunStatus.FAILED, None, False, time.time(), error=LOST)
    PlainReporter(out).run_finished(run, RunStatus.FAILED)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("run r1 FAILED in ") and line.endswith(f": {LOST}")


def test_a_cancel_that_raises_ends_the_run_with_the_error(tmp_path: Path) -> None:
    started: list[Runner] = []

    def ctrl_c() -> None:  # the runner exists only once the run has started
        started[0].request_cancel()

    status, stored, steps, broken = run(
        tmp_path,
        POOLED,
        AFTER,
        pool={
            "script": {"j.pooled": [HANG]},
            "fail_cancel": True,
            "on_poll": ctrl_c,
        },
        started=started,
    )
    assert status == RunStatus.CANCELLED  # what the user asked for; the error is kept
    assert steps["j.pooled"].status == StepStatus.FAILED
    assert stored.error is not None and "cannot remove jobs" in stored.error
    assert steps["j.after"].status == StepStatus.CANCELLED
    assert broken.cancelled == []  # the pool removed nothing: the error says so
    # recorded for the next command's recovery (sdk/recovery.py)
    assert started[0].leftovers == [("pool", Handle("r1/j.pooled/1", "fake-1"))]


def test_timeouts_whose_cancel_breaks_the_executor_fail_every_step_of_it() -> None:
    """Two steps past their deadline on an executor whose cancel raises: the first cancel
    takes both out of flight (the executor is broken); the deadline check goes on without
    tripping over the steps it removed."""
    from conveyor.execute.inflight import Active, InFlight

    clock = FakeClock()
    broken = FakeExecutor(clock, name="pool", fail_cancel=True)
    flight = InFlight(clock)
    for step in (POOLED, replace(POOLED, id="j.other")):
        record = StepRunRecord("r1", step.id, "j", StepStatus.RUNNING)
        handle = Handle(f"r1/{step.id}/1", step.id)
        flight.add(
            Active(
                step, record, broken, handle, 1.0, started_at=clock.now - 2, deadline=clock.now - 1
            )
        )
    flight.check_deadlines()
    failed = flight.take_broken()
    assert sorted(active.step.id for active, _ in failed) == ["j.other", "j.pooled"]
    assert all("cannot remove jobs" in message for _, message in failed)
    assert not flight


def test_an_error_the_executor_says_would_repeat_is_not_retried(tmp_path: Path) -> None:
    """No machine matches the job: another attempt would wait for the same one."""
    status, _, steps, broken = run(
        tmp_path, replace(POOLED, retries=2), pool={"script": {"j.pooled": [UNMATCHED, 0]}}
    )
    assert status == RunStatus.FAILED
    assert steps["j.pooled"].status == StepStatus.FAILED
    assert steps["j.pooled"].error == "no machine matches the job"
    assert steps["j.pooled"].attempt == 1
    assert len(broken.submitted) == 1


def test_where_a_step_ran_is_recorded_with_its_end(tmp_path: Path) -> None:
    ran_on = {"job": "12.0", "slot": "slot1@host", "host": "host"}
    status, _, _, _ = run(tmp_path, POOLED, pool={"ran_on": ran_on})
    assert status == RunStatus.SUCCEEDED
    records = open_repository(f"sqlite:///{tmp_path / 'records.db'}")
    finished = [e for e in records.events("r1") if e.kind == "step-finished"]
    assert [e.data.get("ran_on") for e in finished] == [ran_on]
