"""A step's time at its executor: the ``timeout`` counts from when it starts running,
``queue-timeout`` limits the wait before, and steps queued at an executor without
capacity fail with that reason instead of waiting forever."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.sql import open_repository
from tests.unit.fakes import HANG, FakeClock
from tests.unit.test_runner_failures import POOLED, run

T0 = FakeClock().now
SLOW_QUEUE = {"j.pooled": 100.0}  # the executor starts the step 100 s after its submit


def test_the_timeout_does_not_count_the_time_in_the_queue(tmp_path: Path) -> None:
    status, _, steps, _ = run(tmp_path, replace(POOLED, timeout=5), pool={"queued": SLOW_QUEUE})
    assert status == RunStatus.SUCCEEDED, steps["j.pooled"].error
    assert steps["j.pooled"].attempt == 1
    records = open_repository(f"sqlite:///{tmp_path / 'records.db'}")
    running = [e for e in records.events("r1") if e.kind == "step-running"]
    assert [(e.step_id, e.data["waited_seconds"] >= 100) for e in running] == [("j.pooled", True)]


def test_the_timeout_counts_from_the_start(tmp_path: Path) -> None:
    status, _, steps, executor = run(
        tmp_path,
        replace(POOLED, timeout=5),
        pool={"queued": SLOW_QUEUE, "script": {"j.pooled": [HANG]}},
    )
    assert status == RunStatus.FAILED
    assert steps["j.pooled"].error == "timed out after 5s"
    assert executor.cancelled == ["r1/j.pooled/1"]
    # cancelled once its 5 s of running were up: 100 s queued + 5 s (+ one poll's wait)
    assert 105 <= executor.clock.now - T0 < 106


def test_a_queue_timeout_fails_a_step_that_never_starts(tmp_path: Path) -> None:
    step = replace(POOLED, timeout=1, queue_timeout=30, retries=2)
    status, _, steps, executor = run(tmp_path, step, pool={"queued": {"j.pooled": math.inf}})
    assert status == RunStatus.FAILED
    error = steps["j.pooled"].error or ""
    assert "queue-timeout of 30s" in error and "pool executor" in error
    assert steps["j.pooled"].attempt == 1  # the queue would be as full again: no retry
    assert executor.cancelled == ["r1/j.pooled/1"]


def test_a_queue_timeout_leaves_a_started_step_alone(tmp_path: Path) -> None:
    step = replace(POOLED, queue_timeout=150)
    status, _, steps, _ = run(tmp_path, step, pool={"queued": SLOW_QUEUE})
    assert status == RunStatus.SUCCEEDED, steps["j.pooled"].error


def test_queued_steps_fail_when_the_executor_has_no_capacity_for_its_patience(
    tmp_path: Path,
) -> None:
    never = {"j.pooled": math.inf}
    status, _, steps, executor = run(
        tmp_path, POOLED, pool={"queued": never, "slots": 0, "patience": 60.0}
    )
    assert status == RunStatus.FAILED
    error = steps["j.pooled"].error or ""
    assert "no capacity for 60s" in error and "the fake pool has no slots" in error
    assert executor.cancelled == ["r1/j.pooled/1"]
    assert executor.clock.now - T0 >= 60


def test_an_executor_with_capacity_or_no_patience_lets_steps_wait(tmp_path: Path) -> None:
    for pool in ({"slots": 3, "patience": 1.0}, {"slots": 0, "patience": None}):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        status, _, steps, _ = run(root, POOLED, pool={"queued": SLOW_QUEUE, **pool})
        assert status == RunStatus.SUCCEEDED, (pool, steps["j.pooled"].error)


def test_a_running_step_is_not_failed_for_lack_of_capacity(tmp_path: Path) -> None:
    status, _, steps, _ = run(
        tmp_path,
        replace(POOLED, timeout=200),
        pool={"script": {"j.pooled": [HANG]}, "slots": 0, "patience": 60.0},
    )
    assert status == RunStatus.FAILED
    assert steps["j.pooled"].status == StepStatus.FAILED
    assert steps["j.pooled"].error == "timed out after 200s"


def test_no_capacity_counts_from_when_the_executor_last_had_some(tmp_path: Path) -> None:
    never = {"j.pooled": math.inf}
    pool = {"queued": never, "slots": 0, "patience": 60.0, "idle_since": T0 - 50}
    status, _, steps, executor = run(tmp_path, POOLED, pool=pool)
    assert status == RunStatus.FAILED
    assert "no capacity for 60s" in (steps["j.pooled"].error or "")
    # it had none for 50 s before the run: 10 s more (and one poll's wait), not 60
    assert 10 <= executor.clock.now - T0 < 11


def test_no_capacity_waits_for_the_executors_start_grace(tmp_path: Path) -> None:
    never = {"j.pooled": math.inf}
    pool = {"queued": never, "slots": 0, "patience": 60.0, "idle_since": T0 + 100}
    status, _, steps, executor = run(tmp_path, POOLED, pool=pool)
    assert status == RunStatus.FAILED
    assert "no capacity for 60s" in (steps["j.pooled"].error or "")
    assert 160 <= executor.clock.now - T0 < 161  # the grace, then the whole patience
