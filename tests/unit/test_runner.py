"""The runner through its seam: a fake executor, a fake clock, real store and records."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute import filework
from conveyor.execute.reporting import SilentReporter
from conveyor.execute.runner import Runner, RunOptions
from conveyor.execute.workspace import Workspace
from conveyor.metadata.records import InputRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.sql import open_repository
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.store.cas import ContentStore, Write
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


class GatedWorkspace(Workspace):
    """Hashing the inputs or storing the outputs of the paths in ``gated`` waits until
    ``gate`` is set (bounded: ``expired`` tells the test the wait ran out instead)."""

    gated: Collection[str] = ()
    gate = threading.Event()
    entered = threading.Event()
    expired = False
    on_enter: Any = None

    def _hold(self, paths: Iterable[str]) -> None:
        if not set(paths) & set(self.gated):
            return
        self.entered.set()
        if type(self).on_enter is not None:
            type(self).on_enter()  # through the class: a plain function, not a method
        # generous: a loaded CI machine was seen to take over 5 s to reach the gate's
        # opener; a loop that really waits on the gate still fails, only later
        if not self.gate.wait(timeout=30):
            type(self).expired = True

    def resolve_inputs(
        self,
        patterns: Iterable[str],
        optional: Collection[str] = (),
        seen: Mapping[str, os.stat_result] | None = None,
    ) -> list[InputRecord]:
        patterns = list(patterns)
        self._hold(patterns)
        return super().resolve_inputs(patterns, optional, seen)

    def store_outputs(
        self, outputs: Iterable[str], later: list[Write] | None = None
    ) -> list[OutputRecord]:
        outputs = list(outputs)
        self._hold(outputs)
        return super().store_outputs(outputs, later)


def gated(paths: Collection[str]) -> type[GatedWorkspace]:
    """A fresh gated workspace class (its events are not shared with other tests)."""
    return type(
        "Gated",
        (GatedWorkspace,),
        {"gated": paths, "gate": threading.Event(), "entered": threading.Event()},
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
        workspace: type[Workspace] = Workspace,
        **opts: Any,
    ) -> tuple[RunStatus, dict[str, StepRunRecord], FakeExecutor, Runner]:
        self.runs += 1
        run = RunRecord(f"r{self.runs}", "p", RunStatus.RUNNING, None, False, time.time())
        self.records.create_run(run)
        executor = FakeExecutor(self.clock, script or {}, **(fake or {}))
        self.executor = executor
        digests = DigestCache(self.root / "digests.db")
        runner = Runner(
            run,
            ExecutionPlan("p", (), steps),
            {"fake": executor},
            "fake",
            workspace(self.project, self.store, digests),
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


@pytest.mark.parametrize("how", ["request_cancel", "cancel_from_signal"])
def test_a_cancel_request_cancels_the_active_step_and_the_run(harness: Harness, how: str) -> None:
    """From a thread (a server's worker) or a signal handler (a flag, no lock)."""
    polls: list[None] = []

    def cancel_on_third_poll() -> None:
        polls.append(None)
        if len(polls) == 3:
            getattr(harness.started, how)()

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


def test_an_unkeyed_input_is_brought_to_the_step_but_keys_nothing(harness: Harness) -> None:
    """``keyed: false`` (a Python step's module, whose used code the command keys)."""
    for name in ("in.txt", "module.py"):
        (harness.project / name).write_text("one\n")
    step = replace(MAKE, inputs=("in.txt", "module.py"), unkeyed_inputs=("module.py",))
    _, _, first, _ = harness.run(step)
    assert [i.inputs for i in first.submitted] == [("in.txt", "module.py")]
    (harness.project / "module.py").write_text("two\n")
    _, steps, executor, _ = harness.run(step)
    assert steps["j.make"].cached and executor.submitted == []
    (harness.project / "in.txt").write_text("two\n")
    _, steps, _, _ = harness.run(step)
    assert harness.misses("r3") == {"j.make": "new-fingerprint"}


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


# -- slow file work does not hold up the loop ------------------------------------------
A = StepPlan(id="j.a", job="j", name="a", command="a", inputs=("in.txt",), outputs=("a.txt",))
B = StepPlan(id="j.b", job="j", name="b", command="b", outputs=("b.txt",))
C = StepPlan(id="j.c", job="j", name="c", command="c", outputs=("c.txt",), needs=("j.b",))


def submitted(executor: FakeExecutor) -> list[str]:
    return [i.env["CONVEYOR_STEP_ID"] for i in executor.submitted]


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    """File work on the pool for any file (small work is otherwise done in the loop)."""
    monkeypatch.setattr(filework, "INLINE_BYTES", 1)


@pytest.mark.usefixtures("pooled")
def test_a_completion_is_handled_while_inputs_are_hashed(harness: Harness) -> None:
    (harness.project / "in.txt").write_text("big\n")
    workspace = gated(["in.txt"])
    seen: list[str] = []

    def open_once_c_runs() -> None:
        # by now B's completion was handled: it succeeded and its dependent C launched
        if "j.c" in submitted(harness.executor) and not workspace.gate.is_set():
            seen.extend(submitted(harness.executor))
            workspace.gate.set()

    fake = {"on_poll": open_once_c_runs}
    status, steps, executor, _ = harness.run(A, B, C, fake=fake, workspace=workspace, parallelism=2)
    assert not workspace.expired, "the loop waited for A's inputs to be hashed"
    assert seen == ["j.b", "j.c"]
    assert submitted(executor) == ["j.b", "j.c", "j.a"]
    assert status == RunStatus.SUCCEEDED
    assert {s.status for s in steps.values()} == {StepStatus.SUCCEEDED}


@pytest.mark.usefixtures("pooled")
def test_a_cancel_while_inputs_are_hashed_ends_the_run_without_submitting(
    harness: Harness,
) -> None:
    (harness.project / "in.txt").write_text("big\n")
    workspace = gated(["in.txt"])

    def cancel_the_run() -> None:  # the runner exists only once the run started
        harness.started.request_cancel()

    workspace.on_enter = cancel_the_run

    def open_once_b_is_cancelled() -> None:
        if harness.executor.cancelled:  # the loop took the cancel in while A was being hashed
            workspace.gate.set()

    fake = {"on_poll": open_once_b_is_cancelled}
    status, steps, executor, _ = harness.run(
        A, B, script={"j.b": [HANG]}, fake=fake, workspace=workspace, parallelism=2
    )
    assert not workspace.expired, "the loop waited for A's inputs to be hashed"
    assert status == RunStatus.CANCELLED
    assert submitted(executor) == ["j.b"]
    assert steps["j.a"].status == StepStatus.CANCELLED
    assert steps["j.b"].status == StepStatus.CANCELLED
    assert not any(
        e.kind == "step-started" for e in harness.records.events("r1") if e.step_id == "j.a"
    )


@pytest.mark.usefixtures("pooled")
def test_a_deadline_fires_while_outputs_are_stored(harness: Harness) -> None:
    workspace = gated(["b.txt"])
    hang = replace(C, needs=(), timeout=5)

    def open_once_c_timed_out() -> None:
        if harness.executor.cancelled and workspace.entered.is_set():
            workspace.gate.set()

    def open_if_c_already_timed_out() -> None:
        # the pool's thread may reach B's outputs only after the loop's last poll (seen
        # on a loaded machine): then C timed out first, and nothing else would open it
        if harness.executor.cancelled:
            workspace.gate.set()

    workspace.on_enter = open_if_c_already_timed_out
    fake = {"on_poll": open_once_c_timed_out}
    status, steps, executor, _ = harness.run(
        B, hang, script={"j.c": [HANG]}, fake=fake, workspace=workspace, parallelism=2
    )
    assert not workspace.expired, "the loop waited for B's outputs to be stored"
    assert executor.cancelled == ["r1/j.c/1"]
    assert steps["j.c"].status == StepStatus.FAILED
    assert steps["j.c"].error == "timed out after 5s"
    assert steps["j.b"].status == StepStatus.SUCCEEDED
    assert steps["j.b"].outputs[0].path == "b.txt"
    assert status == RunStatus.FAILED


@pytest.mark.usefixtures("pooled")
def test_a_step_hashed_while_another_fails_sees_the_status_its_key_holds(
    harness: Harness,
) -> None:
    (harness.project / "in.txt").write_text("big\n")
    workspace = gated(["in.txt"])
    fails = StepPlan(id="j.fails", job="j", name="fails", command="false")

    def open_once_it_failed() -> None:
        if "j.fails" in submitted(harness.executor):  # its completion is handled next
            workspace.gate.set()

    fake = {"on_poll": open_once_it_failed}
    always = replace(A, policy="always")
    _, steps, executor, _ = harness.run(
        always, fails, script={"j.fails": [1]}, fake=fake, workspace=workspace, parallelism=2
    )
    assert not workspace.expired
    assert steps["j.fails"].status == StepStatus.FAILED
    [invocation] = [i for i in executor.submitted if i.env["CONVEYOR_STEP_ID"] == "j.a"]
    # keyed on "success" when it launched: its environment says the same
    assert steps["j.a"].parts["run_status"] == "success"
    assert invocation.env["CONVEYOR_RUN_STATUS"] == "success"
