"""The Dask executor's bookkeeping, with a stand-in client (no cluster)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Handle, Invocation
from conveyor.executors.dask.executor import DaskExecutor

pytest.importorskip("distributed", reason="needs dask (pip install 'conveyor[dask]')")


class FakeFuture:
    status = "pending"

    def done(self) -> bool:
        return False


class FakeClient:
    """Answers ``scheduler_info`` with the workers the test sets, counting the calls."""

    status = "running"

    def __init__(self) -> None:
        self.workers: dict[str, dict[str, int]] = {"tcp://w1:1": {"nthreads": 2}}
        self.asked = 0
        self.cancelled: list[Any] = []

    def scheduler_info(self, n_workers: int = 5) -> dict[str, Any]:
        self.asked += 1
        return {"workers": dict(self.workers)}

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def cancel(self, futures: list[Any], force: bool = False) -> None:
        self.cancelled += futures


def _running(tmp_path: Path) -> tuple[DaskExecutor, FakeClient, Handle]:
    executor = DaskExecutor({})
    client = FakeClient()
    executor._client = client
    invocation = Invocation("r/s/1", "sleep 9", {}, tmp_path, tmp_path / "s.log")
    handle = Handle(invocation.key, "conveyor-t-1")
    executor._live[invocation.key] = ("conveyor-t-1", invocation, FakeFuture())
    return executor, client, handle


def test_a_start_heard_after_the_last_look_at_the_workers_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that joined after the last ``scheduler_info`` is not in it yet: its
    step must not be taken for lost until a later look."""
    clock = iter([100.0, 100.5, 100.7, 101.5, 103.0])
    monkeypatch.setattr("conveyor.executors.dask.executor.time.monotonic", lambda: next(clock))
    executor, client, handle = _running(tmp_path)
    assert executor.poll([handle], 0) == []  # 100.0: looked, w1 only
    executor._on_started((0.0, ["conveyor-t-1", "tcp://w2:1"]))  # heard at 100.5, new worker
    assert executor.poll([handle], 0) == []  # 100.7: the last look is older than the start
    client.workers["tcp://w2:1"] = {"nthreads": 1}
    assert executor.poll([handle], 0) == []  # 101.5: w2 is there
    assert executor.started([handle]) == ["r/s/1"]
    del client.workers["tcp://w2:1"]
    (lost,) = executor.poll([handle], 0)  # 103.0: w2 gone
    assert lost.state == "lost" and "tcp://w2:1" in (lost.message or "")
    assert client.cancelled  # so that Dask does not run it again


def test_capacity_is_the_workers_threads_asked_at_most_once_a_second(tmp_path: Path) -> None:
    executor, client, _ = _running(tmp_path)
    capacity = executor.capacity()
    assert capacity.slots == 2 and capacity.patience == 300.0
    assert executor.capacity() == capacity and client.asked == 1
    client.workers.clear()
    executor._workers_at -= 2  # a second later
    assert executor.capacity().slots == 0
    assert "no Dask worker is connected" in executor.capacity().why


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name)
    )
    with pytest.raises(ExecutorError, match=r"pip install 'conveyor\[dask\]'"):
        DaskExecutor({})


def test_a_step_cancelled_before_poll_handed_it_over_is_reported_cancelled(
    tmp_path: Path,
) -> None:
    """``submit`` only records; a cancel before the next poll must still complete it."""
    executor = DaskExecutor({})
    invocation = Invocation("r/s/2", "true", {}, tmp_path, tmp_path / "s.log")
    handle = executor.submit(invocation)
    executor.cancel([handle])
    (completion,) = executor.poll([handle], 0)  # no client: nothing was handed over
    assert (completion.key, completion.state) == ("r/s/2", "cancelled")
    assert executor.poll([handle], 0) == []
