"""The scheduler state machine, driven by hand-made events (no processes, no clocks)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.execute.events import (
    Cancel,
    CancelRequested,
    Decision,
    Finished,
    Launch,
    Skip,
    StepCancelled,
    StepFailed,
    StepSucceeded,
)
from conveyor.execute.scheduler import Scheduler, SchedulerError
from conveyor.plan.model import ExecutionPlan, Policy, StepPlan


def step(
    step_id: str, needs: Iterable[str] = (), policy: Policy = "success", retries: int = 0
) -> StepPlan:
    return StepPlan(
        id=step_id,
        job=step_id.split(".", maxsplit=1)[0],
        name=step_id,
        command="true",
        policy=policy,
        retries=retries,
        needs=tuple(needs),
    )


def plan(*steps: StepPlan) -> ExecutionPlan:
    return ExecutionPlan(pipeline="test", params=(), steps=tuple(steps))


def launched(decisions: Iterable[Decision]) -> list[str]:
    return [d.step_id for d in decisions if isinstance(d, Launch)]


def skipped(decisions: Iterable[Decision]) -> dict[str, StepStatus]:
    return {d.step_id: d.status for d in decisions if isinstance(d, Skip)}


def finished(decisions: Iterable[Decision]) -> list[RunStatus]:
    return [d.status for d in decisions if isinstance(d, Finished)]


# -- construction ------------------------------------------------------------------


def test_parallelism_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="parallelism"):
        Scheduler(plan(step("a")), parallelism=0)


def test_empty_plan_finishes_at_once() -> None:
    sched = Scheduler(plan(), parallelism=1)
    assert sched.start() == [Finished(RunStatus.SUCCEEDED)]
    assert sched.finished


# -- parallelism and order ---------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2, 3, 7])
def test_never_more_than_parallelism_launches_outstanding(parallelism: int) -> None:
    ids = [f"j.s{i}" for i in range(6)]
    sched = Scheduler(plan(*(step(i) for i in ids)), parallelism=parallelism)
    outstanding = launched(sched.start())
    assert len(outstanding) == min(parallelism, len(ids))
    order = list(outstanding)
    while outstanding:
        done = outstanding.pop(0)
        decisions = sched.handle(StepSucceeded(done))
        outstanding += launched(decisions)
        order += launched(decisions)
        assert len(outstanding) <= parallelism
        assert len(sched.running) == len(outstanding)
    assert order == ids  # independent steps launch in plan order
    assert sched.finished


def test_dependency_waits_for_its_needs() -> None:
    sched = Scheduler(plan(step("a.x"), step("b.y", needs=["a.x"])), parallelism=4)
    assert launched(sched.start()) == ["a.x"]
    assert sched.status["b.y"] == StepStatus.QUEUED
    assert launched(sched.handle(StepSucceeded("a.x"))) == ["b.y"]


def test_ties_are_broken_by_plan_order_not_by_readiness_time() -> None:
    # c is ready from the start, b only once a succeeds; b comes first in the plan
    sched = Scheduler(
        plan(step("a.s"), step("b.s", needs=["a.s"]), step("c.s")),
        parallelism=1,
    )
    assert launched(sched.start()) == ["a.s"]
    assert launched(sched.handle(StepSucceeded("a.s"))) == ["b.s"]
    assert launched(sched.handle(StepSucceeded("b.s"))) == ["c.s"]
    assert sched.handle(StepSucceeded("c.s")) == [Finished(RunStatus.SUCCEEDED)]


def test_diamond_joins_only_after_both_branches() -> None:
    sched = Scheduler(
        plan(
            step("a.s"),
            step("b.s", needs=["a.s"]),
            step("c.s", needs=["a.s"]),
            step("d.s", needs=["b.s", "c.s"]),
        ),
        parallelism=4,
    )
    assert launched(sched.start()) == ["a.s"]
    assert launched(sched.handle(StepSucceeded("a.s"))) == ["b.s", "c.s"]
    assert launched(sched.handle(StepSucceeded("c.s"))) == []
    assert launched(sched.handle(StepSucceeded("b.s"))) == ["d.s"]


def test_a_step_released_by_a_skip_at_start_launches_once() -> None:
    # a failure() step with nothing upstream is skipped by start(); that releases b
    sched = Scheduler(plan(step("a.s", policy="failure"), step("b.s", needs=["a.s"])), 2)
    decisions = sched.start()
    assert skipped(decisions) == {"a.s": StepStatus.SKIPPED}
    assert launched(decisions) == ["b.s"]
    assert sched.handle(StepSucceeded("b.s")) == [Finished(RunStatus.SUCCEEDED)]


# -- run policies --------------------------------------------------------------------


def test_success_steps_after_a_failure_are_skipped_transitively() -> None:
    sched = Scheduler(
        plan(step("a.s"), step("b.s", needs=["a.s"]), step("c.s", needs=["b.s"])),
        parallelism=1,
    )
    sched.start()
    decisions = sched.handle(StepFailed("a.s", retryable=False))
    assert skipped(decisions) == {"b.s": StepStatus.SKIPPED, "c.s": StepStatus.SKIPPED}
    assert finished(decisions) == [RunStatus.FAILED]
    assert sched.status == {
        "a.s": StepStatus.FAILED,
        "b.s": StepStatus.SKIPPED,
        "c.s": StepStatus.SKIPPED,
    }


def test_skip_reason_names_the_upstream_failure() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s", needs=["a.s"])), parallelism=1)
    sched.start()
    (skip,) = [d for d in sched.handle(StepFailed("a.s", False)) if isinstance(d, Skip)]
    assert "failed" in skip.reason


def test_failure_handler_runs_only_after_a_failure() -> None:
    steps = (step("a.s"), step("h.s", needs=["a.s"], policy="failure"))
    ok = Scheduler(plan(*steps), parallelism=1)
    ok.start()
    decisions = ok.handle(StepSucceeded("a.s"))
    assert skipped(decisions) == {"h.s": StepStatus.SKIPPED}
    assert finished(decisions) == [RunStatus.SUCCEEDED]

    bad = Scheduler(plan(*steps), parallelism=1)
    bad.start()
    assert launched(bad.handle(StepFailed("a.s", False))) == ["h.s"]
    assert bad.handle(StepSucceeded("h.s")) == [Finished(RunStatus.FAILED)]


def test_failure_is_seen_through_a_skipped_step() -> None:
    # a fails -> b (success) is skipped -> h (failure) still sees the failure
    sched = Scheduler(
        plan(step("a.s"), step("b.s", needs=["a.s"]), step("h.s", needs=["b.s"], policy="failure")),
        parallelism=1,
    )
    sched.start()
    decisions = sched.handle(StepFailed("a.s", False))
    assert skipped(decisions) == {"b.s": StepStatus.SKIPPED}
    assert launched(decisions) == ["h.s"]


def test_handled_failure_still_taints_downstream_success_steps() -> None:
    sched = Scheduler(
        plan(
            step("a.s"),
            step("h.s", needs=["a.s"], policy="failure"),
            step("d.s", needs=["h.s"]),
            step("e.s", needs=["h.s"], policy="always"),
            step("f.s", needs=["h.s"], policy="failure"),
        ),
        parallelism=3,
    )
    sched.start()
    assert launched(sched.handle(StepFailed("a.s", False))) == ["h.s"]
    decisions = sched.handle(StepSucceeded("h.s"))
    assert skipped(decisions) == {"d.s": StepStatus.SKIPPED}
    assert launched(decisions) == ["e.s", "f.s"]


def test_always_runs_regardless_and_does_not_clear_the_taint() -> None:
    sched = Scheduler(
        plan(
            step("a.s"),
            step("z.s", needs=["a.s"], policy="always"),
            step("d.s", needs=["z.s"]),
        ),
        parallelism=1,
    )
    sched.start()
    assert launched(sched.handle(StepFailed("a.s", False))) == ["z.s"]
    decisions = sched.handle(StepSucceeded("z.s"))
    assert skipped(decisions) == {"d.s": StepStatus.SKIPPED}
    assert finished(decisions) == [RunStatus.FAILED]


def test_always_runs_after_success_too() -> None:
    sched = Scheduler(plan(step("a.s"), step("z.s", needs=["a.s"], policy="always")), 1)
    sched.start()
    assert launched(sched.handle(StepSucceeded("a.s"))) == ["z.s"]


def test_one_failed_dependency_among_several_taints() -> None:
    sched = Scheduler(
        plan(
            step("a.s"),
            step("b.s"),
            step("c.s", needs=["a.s", "b.s"]),
            step("h.s", needs=["a.s", "b.s"], policy="failure"),
        ),
        parallelism=2,
    )
    sched.start()
    assert sched.handle(StepSucceeded("a.s")) == []
    decisions = sched.handle(StepFailed("b.s", False))
    assert skipped(decisions) == {"c.s": StepStatus.SKIPPED}
    assert launched(decisions) == ["h.s"]


def test_a_failure_does_not_taint_unrelated_branches() -> None:
    sched = Scheduler(
        plan(step("a.s"), step("b.s"), step("c.s", needs=["b.s"])),
        parallelism=2,
    )
    sched.start()
    sched.handle(StepFailed("a.s", False))
    assert launched(sched.handle(StepSucceeded("b.s"))) == ["c.s"]
    assert sched.handle(StepSucceeded("c.s")) == [Finished(RunStatus.FAILED)]
    assert sched.status["c.s"] == StepStatus.SUCCEEDED


# -- retries -------------------------------------------------------------------------


def test_retryable_failure_is_relaunched_up_to_retries_plus_one_attempts() -> None:
    sched = Scheduler(plan(step("a.s", retries=2), step("b.s", needs=["a.s"])), 1)
    assert sched.start() == [Launch("a.s", 1)]
    assert sched.handle(StepFailed("a.s")) == [Launch("a.s", 2)]
    assert sched.status["a.s"] == StepStatus.RUNNING
    assert sched.handle(StepFailed("a.s")) == [Launch("a.s", 3)]
    decisions = sched.handle(StepFailed("a.s"))
    assert launched(decisions) == []
    assert skipped(decisions) == {"b.s": StepStatus.SKIPPED}
    assert finished(decisions) == [RunStatus.FAILED]
    assert sched.attempts["a.s"] == 3
    assert sched.status["a.s"] == StepStatus.FAILED


def test_no_retries_means_one_attempt() -> None:
    sched = Scheduler(plan(step("a.s")), 1)
    sched.start()
    assert sched.handle(StepFailed("a.s", retryable=True)) == [Finished(RunStatus.FAILED)]
    assert sched.attempts["a.s"] == 1


def test_retry_that_succeeds_lets_the_run_succeed() -> None:
    sched = Scheduler(plan(step("a.s", retries=1), step("b.s", needs=["a.s"])), 1)
    sched.start()
    assert sched.handle(StepFailed("a.s")) == [Launch("a.s", 2)]
    assert sched.handle(StepSucceeded("a.s")) == [Launch("b.s", 1)]
    assert sched.handle(StepSucceeded("b.s")) == [Finished(RunStatus.SUCCEEDED)]
    assert sched.attempts["a.s"] == 2


def test_non_retryable_failure_fails_at_once() -> None:
    sched = Scheduler(plan(step("a.s", retries=5)), 1)
    sched.start()
    assert sched.handle(StepFailed("a.s", retryable=False)) == [Finished(RunStatus.FAILED)]
    assert sched.attempts["a.s"] == 1
    assert sched.status["a.s"] == StepStatus.FAILED


def test_retry_does_not_exceed_parallelism() -> None:
    sched = Scheduler(plan(step("a.s", retries=1), step("b.s")), parallelism=1)
    assert launched(sched.start()) == ["a.s"]
    assert sched.handle(StepFailed("a.s")) == [Launch("a.s", 2)]
    assert sched.running == frozenset({"a.s"})


# -- cancel ----------------------------------------------------------------------------


def test_cancel_skips_queued_cancels_running_and_finishes_when_they_report() -> None:
    sched = Scheduler(
        plan(step("a.s"), step("b.s"), step("c.s"), step("d.s", needs=["a.s"])),
        parallelism=2,
    )
    assert launched(sched.start()) == ["a.s", "b.s"]
    decisions = sched.handle(CancelRequested("user pressed ctrl-c"))
    assert [d for d in decisions if isinstance(d, Skip)] == [
        Skip("c.s", StepStatus.CANCELLED, "user pressed ctrl-c")
    ]
    assert [d for d in decisions if isinstance(d, Cancel)] == [Cancel("a.s"), Cancel("b.s")]
    assert launched(decisions) == [] and finished(decisions) == []
    assert not sched.finished

    decisions = sched.handle(StepCancelled("a.s"))
    assert skipped(decisions) == {"d.s": StepStatus.CANCELLED}
    assert finished(decisions) == []
    assert sched.handle(StepCancelled("b.s")) == [Finished(RunStatus.CANCELLED)]
    assert sched.status == {
        "a.s": StepStatus.CANCELLED,
        "b.s": StepStatus.CANCELLED,
        "c.s": StepStatus.CANCELLED,
        "d.s": StepStatus.CANCELLED,
    }


def test_cancel_while_a_step_ends_normally_still_finishes_cancelled() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s"), step("c.s", needs=["a.s"])), 1)
    sched.start()
    decisions = sched.handle(CancelRequested())
    assert skipped(decisions) == {"b.s": StepStatus.CANCELLED}
    assert [d for d in decisions if isinstance(d, Cancel)] == [Cancel("a.s")]
    decisions = sched.handle(StepSucceeded("a.s"))
    assert skipped(decisions) == {"c.s": StepStatus.CANCELLED}
    assert finished(decisions) == [RunStatus.CANCELLED]
    assert sched.status == {
        "a.s": StepStatus.SUCCEEDED,
        "b.s": StepStatus.CANCELLED,
        "c.s": StepStatus.CANCELLED,
    }


def test_after_cancel_nothing_new_launches_and_failures_are_not_retried() -> None:
    sched = Scheduler(
        plan(step("a.s", retries=3), step("b.s", needs=["a.s"], policy="always")),
        parallelism=1,
    )
    sched.start()
    sched.handle(CancelRequested())
    decisions = sched.handle(StepFailed("a.s", retryable=True))
    assert launched(decisions) == []
    assert skipped(decisions) == {"b.s": StepStatus.CANCELLED}
    assert finished(decisions) == [RunStatus.CANCELLED]
    assert sched.status["a.s"] == StepStatus.FAILED


def test_a_second_cancel_request_repeats_nothing() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s")), parallelism=1)
    sched.start()
    first = sched.handle(CancelRequested())
    assert Cancel("a.s") in first
    assert sched.handle(CancelRequested()) == []


# -- finished status ---------------------------------------------------------------


def test_finished_comes_once_and_last() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s", needs=["a.s"])), parallelism=1)
    sched.start()
    assert finished(sched.handle(StepSucceeded("a.s"))) == []
    decisions = sched.handle(StepSucceeded("b.s"))
    assert decisions == [Finished(RunStatus.SUCCEEDED)]
    assert sched.finished


def test_a_step_cancelled_by_its_executor_does_not_let_the_run_succeed() -> None:
    # no CancelRequested: the batch system removed the step on its own
    sched = Scheduler(plan(step("a.s"), step("b.s", needs=["a.s"])), parallelism=1)
    sched.start()
    decisions = sched.handle(StepCancelled("a.s"))
    assert skipped(decisions) == {"b.s": StepStatus.SKIPPED}
    assert len(finished(decisions)) == 1
    assert finished(decisions)[0] != RunStatus.SUCCEEDED


def test_cached_success_counts_as_success() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s", needs=["a.s"])), parallelism=1)
    sched.start()
    assert launched(sched.handle(StepSucceeded("a.s", cached=True))) == ["b.s"]


# -- events that do not fit ----------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [StepSucceeded("b.s"), StepFailed("b.s"), StepCancelled("b.s"), StepSucceeded("nope.s")],
)
def test_event_for_a_step_that_is_not_running_is_an_error(event: object) -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s", needs=["a.s"])), parallelism=1)
    sched.start()
    with pytest.raises(SchedulerError, match="not running"):
        sched.handle(event)  # type: ignore[arg-type]


def test_a_step_cannot_report_twice() -> None:
    sched = Scheduler(plan(step("a.s"), step("b.s")), parallelism=2)
    sched.start()
    sched.handle(StepSucceeded("a.s"))
    with pytest.raises(SchedulerError):
        sched.handle(StepSucceeded("a.s"))
    with pytest.raises(SchedulerError):
        sched.handle(StepFailed("a.s"))


def test_events_after_finished_are_errors() -> None:
    sched = Scheduler(plan(step("a.s")), parallelism=1)
    sched.start()
    sched.handle(StepSucceeded("a.s"))
    with pytest.raises(SchedulerError):
        sched.handle(CancelRequested())
    with pytest.raises(SchedulerError):
        sched.handle(StepSucceeded("a.s"))


# -- property: random DAGs with random outcomes --------------------------------------

OUTCOMES = ("succeed", "succeed-cached", "fail", "fail-final", "cancelled")


@st.composite
def dags(draw: st.DrawFn) -> ExecutionPlan:
    count = draw(st.integers(min_value=1, max_value=9))
    steps = []
    for i in range(count):
        needs = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)) if i else set()
        steps.append(
            step(
                f"j{i}.s",
                needs=[f"j{n}.s" for n in sorted(needs)],
                policy=draw(st.sampled_from(["success", "success", "failure", "always"])),
                retries=draw(st.integers(min_value=0, max_value=2)),
            )
        )
    return plan(*steps)


def _expected_to_run(plan_: ExecutionPlan, final: dict[str, StepStatus], step_id: str) -> bool:
    """Reference model of the run policy, from the documented taint rule."""

    def tainted(sid: str) -> bool:
        own = final[sid] in (StepStatus.FAILED, StepStatus.CANCELLED)
        return own or any(tainted(d) for d in plan_.step(sid).needs)

    upstream_tainted = any(tainted(d) for d in plan_.step(step_id).needs)
    policy = plan_.step(step_id).policy
    return policy == "always" or (policy == "failure") == upstream_tainted


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_=dags(), parallelism=st.integers(min_value=1, max_value=4), data=st.data())
def test_random_dags_reach_one_final_state_per_step(
    plan_: ExecutionPlan, parallelism: int, data: st.DataObject
) -> None:
    sched = Scheduler(plan_, parallelism)
    needs = {s.id: set(s.needs) for s in plan_.steps}
    final: dict[str, StepStatus] = {}
    final_count = dict.fromkeys(needs, 0)
    attempts = dict.fromkeys(needs, 0)
    running: list[str] = []
    finished_seen: list[RunStatus] = []
    cancel_at = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=12)))
    cancelled = False

    def settle(sid: str, status: StepStatus) -> None:
        final[sid] = status
        final_count[sid] += 1

    def apply(decisions: list[Decision], reported: str | None, status: StepStatus | None) -> None:
        relaunched = any(isinstance(d, Launch) and d.step_id == reported for d in decisions)
        if reported is not None and status is not None and not relaunched:
            running.remove(reported)
            settle(reported, status)
        for i, decision in enumerate(decisions):
            assert not finished_seen, "a decision came after Finished"
            if isinstance(decision, Launch):
                sid = decision.step_id
                assert not cancelled, f"{sid} launched after the run was cancelled"
                assert sid not in final, f"{sid} launched after it was final"
                assert all(n in final for n in needs[sid]), f"{sid} launched before its needs"
                assert decision.attempt == attempts[sid] + 1
                assert decision.attempt <= plan_.step(sid).retries + 1
                if not cancelled:
                    assert _expected_to_run(plan_, final, sid), f"{sid} ran against its policy"
                attempts[sid] = decision.attempt
                if decision.attempt == 1:
                    running.append(sid)
            elif isinstance(decision, Skip):
                sid = decision.step_id
                assert sid not in running
                assert all(n in final for n in needs[sid]), f"{sid} skipped before its needs"
                if cancelled:
                    assert decision.status == StepStatus.CANCELLED
                else:
                    assert decision.status == StepStatus.SKIPPED
                    assert not _expected_to_run(plan_, final, sid), f"{sid} skipped wrongly"
                settle(sid, decision.status)
            elif isinstance(decision, Cancel):
                assert decision.step_id in running
            else:
                assert i == len(decisions) - 1, "Finished is not the last decision"
                finished_seen.append(decision.status)
        assert len(running) <= parallelism
        assert sched.running == frozenset(running)

    apply(sched.start(), None, None)
    turn = 0
    while not finished_seen:
        if turn == cancel_at and not cancelled:
            cancelled = True
            apply(sched.handle(CancelRequested("test")), None, None)
            turn += 1
            continue
        assert running, "the scheduler stalled: nothing runs and the run is not finished"
        sid = running[data.draw(st.integers(min_value=0, max_value=len(running) - 1))]
        outcome = data.draw(st.sampled_from(OUTCOMES))
        if outcome == "succeed":
            event, status = StepSucceeded(sid), StepStatus.SUCCEEDED
        elif outcome == "succeed-cached":
            event, status = StepSucceeded(sid, cached=True), StepStatus.SUCCEEDED
        elif outcome == "fail":
            event, status = StepFailed(sid, retryable=True), StepStatus.FAILED
        elif outcome == "fail-final":
            event, status = StepFailed(sid, retryable=False), StepStatus.FAILED
        else:
            event, status = StepCancelled(sid), StepStatus.CANCELLED
        apply(sched.handle(event), sid, status)
        turn += 1

    assert len(finished_seen) == 1
    assert sched.finished
    assert not running
    assert all(count == 1 for count in final_count.values()), final_count
    assert sched.status == final
    if cancelled:
        assert finished_seen[0] == RunStatus.CANCELLED
    elif StepStatus.FAILED in final.values():
        assert finished_seen[0] == RunStatus.FAILED
    elif set(final.values()) <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
        assert finished_seen[0] == RunStatus.SUCCEEDED
    # (a step cancelled by its executor alone: see the dedicated test above)
    with pytest.raises(SchedulerError):
        sched.handle(CancelRequested())
