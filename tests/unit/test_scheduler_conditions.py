"""Steps whose trigger/when conditions the run does not meet are skipped, with the reason."""

from __future__ import annotations

from dataclasses import replace

from conveyor.domain.conditions import Condition, RunFacts
from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute.events import Finished, Launch, Skip, StepSucceeded
from conveyor.execute.scheduler import Scheduler
from tests.unit.test_scheduler import plan, step

ON_MASTER = (Condition("job", "branch", ("master",)),)


def test_a_step_whose_condition_is_unmet_is_skipped_with_the_reason() -> None:
    guarded = replace(step("a.deploy"), conditions=ON_MASTER)
    sched = Scheduler(plan(guarded), 1, RunFacts(event="push", branch="dev"))
    (skip,) = [d for d in sched.start() if isinstance(d, Skip)]
    assert skip.status == StepStatus.SKIPPED
    assert skip.reason == "the job's branch condition wants master; this run's branch is 'dev'"
    assert sched.finished


def test_a_step_whose_conditions_hold_launches() -> None:
    guarded = replace(step("a.deploy"), conditions=ON_MASTER)
    sched = Scheduler(plan(guarded), 1, RunFacts(event="push", branch="master"))
    assert [d.step_id for d in sched.start() if isinstance(d, Launch)] == ["a.deploy"]


def test_dependents_of_a_skipped_step_still_run_and_the_run_succeeds() -> None:
    guarded = replace(step("a.publish"), conditions=(Condition("step", "event", ("tag",)),))
    after = step("a.notify", needs=["a.publish"])
    sched = Scheduler(plan(guarded, after), 1, RunFacts(event="push"))
    decisions = sched.start()
    assert [d.step_id for d in decisions if isinstance(d, Launch)] == ["a.notify"]
    done = sched.handle(StepSucceeded("a.notify", cached=False))
    assert [d.status for d in done if isinstance(d, Finished)] == [RunStatus.SUCCEEDED]


def test_without_facts_a_run_is_a_push() -> None:
    guarded = replace(step("a.x"), conditions=(Condition("job", "event", ("push",)),))
    assert any(isinstance(d, Launch) for d in Scheduler(plan(guarded), 1).start())
