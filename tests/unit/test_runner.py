"""The runner through its seam: a fake executor, a fake clock, real store and records."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute.reporting import SilentReporter
from conveyor.execute.runner import Runner, RunOptions
from conveyor.execute.workspace import Workspace
from conveyor.metadata.records import RunRecord, StepRunRecord
from conveyor.metadata.sql import open_repository
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache
from tests.unit.fakes import HANG, FakeClock, FakeExecutor
from tests.unit.test_images import IMAGE_ID, FakeCli, runtime

MAKE = StepPlan(id="j.make", job="j", name="make", command="make", outputs=("out/a.txt",))
USE = StepPlan(
    id="j.use",
    job="j",
    name="use",
    command="use",
    inputs=("out/a.txt",),
    outputs=("b.txt",),
    needs=("j.make",),
)


class Harness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = FakeClock()
        self.records = open_repository(f"sqlite:///{root / 'records.db'}")
        self.store = ContentStore(root / "store")
        self.project = root / "project"
        self.project.mkdir(exist_ok=True)
        self.runs = 0

    def run(
        self,
        *steps: StepPlan,
        script: dict[str, Any] | None = None,
        fake: dict[str, Any] | None = None,
        **opts: Any,
    ) -> tuple[RunStatus, dict[str, StepRunRecord], FakeExecutor, Runner]:
        self.runs += 1
        run = RunRecord(f"r{self.runs}", "p", RunStatus.RUNNING, None, False, time.time())
        self.records.create_run(run)
        executor = FakeExecutor(self.clock, script or {}, **(fake or {}))
        digests = DigestCache(self.root / "digests.db")
        runner = Runner(
            run,
            ExecutionPlan("p", (), steps),
            {"fake": executor},
            "fake",
            Workspace(self.project, self.store, digests),
            self.records,
            self.root,
            SilentReporter(),
            RunOptions(**opts),
            clock=self.clock,
        )
        self.started = runner
        status = runner.execute()
        digests.close()
        steps_by_id = {s.step_id: s for s in self.records.step_runs(run.id)}
        return status, steps_by_id, executor, runner

    def misses(self, run_id: str) -> dict[str, object]:
        return {
            e.step_id or "": e.data["cache_miss"]
            for e in self.records.events(run_id)
            if e.kind == "step-started"
        }


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_steps_succeed_and_their_outputs_are_stored(harness: Harness) -> None:
    status, steps, executor, _ = harness.run(MAKE, USE)
    assert status == RunStatus.SUCCEEDED
    assert [i.env["CONVEYOR_STEP_ID"] for i in executor.submitted] == ["j.make", "j.use"]
    assert steps["j.use"].status == StepStatus.SUCCEEDED
    digest = steps["j.make"].outputs[0].digest
    assert harness.store.has(digest)
    assert harness.misses("r1") == {"j.make": "new-fingerprint", "j.use": "new-fingerprint"}


def test_a_failure_skips_what_depends_on_it(harness: Harness) -> None:
    status, steps, _, _ = harness.run(MAKE, USE, script={"j.make": [3]})
    assert status == RunStatus.FAILED
    assert steps["j.make"].status == StepStatus.FAILED
    assert steps["j.make"].exit_code == 3 and steps["j.make"].error == "exit code 3"
    assert steps["j.use"].status == StepStatus.SKIPPED


def test_a_retry_runs_the_step_again(harness: Harness) -> None:
    status, steps, executor, _ = harness.run(replace(MAKE, retries=2), script={"j.make": [1, 0]})
    assert status == RunStatus.SUCCEEDED
    assert steps["j.make"].attempt == 2
    assert [i.key for i in executor.submitted] == ["r1/j.make/1", "r1/j.make/2"]


def test_a_step_past_its_timeout_is_cancelled_and_fails(harness: Harness) -> None:
    start = harness.clock.now
    status, steps, executor, _ = harness.run(replace(MAKE, timeout=5), script={"j.make": [HANG]})
    assert status == RunStatus.FAILED
    assert steps["j.make"].error == "timed out after 5s"
    assert executor.cancelled == ["r1/j.make/1"]
    assert harness.clock.now - start >= 5


def test_a_cancel_request_cancels_the_active_step_and_the_run(harness: Harness) -> None:
    polls: list[None] = []

    def cancel_on_third_poll() -> None:
        polls.append(None)
        if len(polls) == 3:
            harness.started.request_cancel()

    clock, records = harness.clock, harness.records
    run = RunRecord("rc", "p", RunStatus.RUNNING, None, False, time.time())
    records.create_run(run)
    executor = FakeExecutor(clock, {"j.make": [HANG]}, on_poll=cancel_on_third_poll)
    runner = Runner(
        run,
        ExecutionPlan("p", (), (MAKE, USE)),
        {"fake": executor},
        "fake",
        Workspace(harness.project, harness.store, DigestCache(harness.root / "d.db")),
        records,
        harness.root,
        SilentReporter(),
        RunOptions(),
        clock=clock,
    )
    harness.started = runner
    assert runner.execute() == RunStatus.CANCELLED
    runner.workspace.digests.close()
    steps = {s.step_id: s for s in records.step_runs("rc")}
    assert executor.cancelled == ["rc/j.make/1"]
    assert steps["j.make"].status == StepStatus.CANCELLED
    assert steps["j.use"].status == StepStatus.CANCELLED


def test_an_unchanged_step_is_served_from_the_cache(harness: Harness) -> None:
    harness.run(MAKE, USE)
    (harness.project / "out" / "a.txt").unlink()
    status, steps, executor, _ = harness.run(MAKE, USE)
    assert status == RunStatus.SUCCEEDED
    assert executor.submitted == []
    assert all(s.cached and s.cached_from == "r1" for s in steps.values())
    assert (harness.project / "out" / "a.txt").read_text() == "j.make attempt 1\n"


@pytest.mark.parametrize("reason", ["forced", "cache-disabled", "outputs-gone"])
def test_each_cache_miss_reason_is_recorded(harness: Harness, reason: str) -> None:
    _, first, _, _ = harness.run(MAKE)
    step, opts = MAKE, {}
    if reason == "forced":
        opts = {"force": True}
    elif reason == "cache-disabled":
        step = replace(MAKE, cache=False)
    elif reason == "outputs-gone":
        harness.store.remove(first["j.make"].outputs[0].digest)
        (harness.project / "out" / "a.txt").unlink()
    status, steps, executor, _ = harness.run(step, **opts)
    assert status == RunStatus.SUCCEEDED
    assert len(executor.submitted) == 1 and not steps["j.make"].cached
    assert harness.misses("r2") == {"j.make": reason}


def test_a_changed_input_is_a_new_fingerprint(harness: Harness) -> None:
    (harness.project / "in.txt").write_text("one\n")
    step = replace(MAKE, inputs=("in.txt",))
    harness.run(step)
    (harness.project / "in.txt").write_text("two\n")
    _, steps, _, _ = harness.run(step)
    assert not steps["j.make"].cached
    assert harness.misses("r2") == {"j.make": "new-fingerprint"}


def test_image_steps_run_through_the_container_wrapper(harness: Harness) -> None:
    cli = FakeCli(set())
    status, _, executor, _ = harness.run(
        replace(MAKE, image="alpine"), fake={"starts_containers": True}, runtime=runtime(cli)
    )
    assert status == RunStatus.SUCCEEDED
    assert cli.verbs() == ["inspect", "pull", "inspect"]
    [invocation] = executor.submitted
    assert invocation.contained and invocation.image_id == IMAGE_ID
    assert "podman run --rm --name conveyor-r1-j.make-1" in invocation.command
    assert "sh -e -c make" in invocation.command


def test_images_are_resolved_before_the_loop_starts(harness: Harness) -> None:
    cli = FakeCli({"alpine"})
    later = replace(USE, image="busybox", pull="never")
    status, steps, _, _ = harness.run(
        MAKE,
        later,
        script={"j.make": [1]},
        fake={"starts_containers": True},
        runtime=runtime(cli),
    )
    # the step that needs busybox never launched, yet its image was looked up up front
    assert status == RunStatus.FAILED and steps["j.use"].status == StepStatus.SKIPPED
    assert [c[-1] for c in cli.calls] == ["busybox"]


def test_an_executor_that_starts_no_containers_refuses_image_steps(harness: Harness) -> None:
    status, steps, executor, _ = harness.run(
        replace(MAKE, image="alpine"), runtime=runtime(FakeCli({"alpine"}))
    )
    assert status == RunStatus.FAILED and executor.submitted == []
    assert "the fake executor does not start containers" in (steps["j.make"].error or "")
