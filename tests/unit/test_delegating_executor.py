"""The base of executor wrappers forwards every method of the executor contract."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from conveyor.executors.base import DelegatingExecutor, Executor, Handle, Invocation
from conveyor.executors.registry import REQUIRED
from tests.unit.fakes import FakeClock, FakeExecutor


class _Calls:
    """An inner executor that answers each call with its name and arguments."""

    name = "inner"
    default_parallelism = 7
    starts_containers = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append((method, args))
            return (method, args)

        return call


def test_the_methods_below_are_the_whole_contract() -> None:
    methods = {n for n, v in vars(Executor).items() if inspect.isfunction(v)}
    assert {n for n in methods if not n.startswith("_")} == set(REQUIRED)


@pytest.mark.parametrize("method", REQUIRED)
def test_each_contract_method_is_forwarded(method: str) -> None:
    inner = _Calls()
    wrapper = DelegatingExecutor(inner)  # type: ignore[arg-type]
    args = {
        "submit": (Invocation("r/s/1", "true", {}, Path("."), Path("s.log")),),
        "poll": ([Handle("r/s/1", "1")], 0.5),
        "cancel": ([Handle("r/s/1", "1")],),
        "close": (),
        "recover": ([Handle("r/s/1", "1")],),
        "started": ([Handle("r/s/1", "1")],),
        "capacity": (),
    }[method]
    answer = getattr(wrapper, method)(*args)
    assert inner.calls == [(method, args)]
    returns = method not in ("cancel", "close")  # these answer None by contract
    assert answer == ((method, args) if returns else None)


def test_a_wrapper_speaks_for_its_inner_executor() -> None:
    inner = FakeExecutor(FakeClock())
    wrapper = DelegatingExecutor(inner)
    assert isinstance(wrapper, Executor)
    assert wrapper.inner is inner
    assert (wrapper.name, wrapper.default_parallelism) == ("fake", 4)
