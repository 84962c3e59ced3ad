"""The server's run plans, kept per (project, commit, parameters): a commit never
changes, so a run page opened again does not compile its pipeline again."""

from __future__ import annotations

from conveyor.server.web.plans import PlanCache
from conveyor.server.web.views import RunPlan


def compiler(calls: list[str], error: str | None = None) -> object:
    def compile_() -> RunPlan:
        calls.append("compiled")
        return RunPlan(["a.s0"], {}, {}, error)

    return compile_


def test_the_same_commit_and_parameters_compile_once() -> None:
    cache, calls = PlanCache(4), []
    first = cache.get(("demo", "c1", {"n": 1}), compiler(calls))
    again = cache.get(("demo", "c1", {"n": 1}), compiler(calls))
    assert again is first and calls == ["compiled"]


def test_other_parameters_a_commit_or_a_project_compile_again() -> None:
    cache, calls = PlanCache(4), []
    for key in (("demo", "c1", {"n": 1}), ("demo", "c1", {"n": 2}), ("demo", "c2", {"n": 1})):
        cache.get(key, compiler(calls))
    cache.get(("other", "c1", {"n": 1}), compiler(calls))
    assert len(calls) == 4


def test_parameters_in_another_order_are_the_same_plan() -> None:
    cache, calls = PlanCache(4), []
    cache.get(("demo", "c1", {"a": 1, "b": [1, 2]}), compiler(calls))
    cache.get(("demo", "c1", {"b": [1, 2], "a": 1}), compiler(calls))
    assert calls == ["compiled"]


def test_a_plan_that_failed_is_tried_again() -> None:
    cache, calls = PlanCache(4), []
    failed = cache.get(("demo", "c1", {}), compiler(calls, "git was busy"))
    assert failed.error == "git was busy"
    cache.get(("demo", "c1", {}), compiler(calls, "git was busy"))
    assert calls == ["compiled", "compiled"]


def test_the_least_recently_used_plan_goes_first() -> None:
    cache, calls = PlanCache(2), []
    cache.get(("demo", "c1", {}), compiler(calls))
    cache.get(("demo", "c2", {}), compiler(calls))
    cache.get(("demo", "c1", {}), compiler(calls))  # c1 used again: c2 is the oldest
    cache.get(("demo", "c3", {}), compiler(calls))
    assert len(calls) == 3
    cache.get(("demo", "c1", {}), compiler(calls))
    assert len(calls) == 3
    cache.get(("demo", "c2", {}), compiler(calls))
    assert len(calls) == 4
