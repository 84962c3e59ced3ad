"""capacity() of the batch executors: counted from their backend, cached, and a failed
count is the last answer (a busy collector or driver never fails a run)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import UNBOUNDED, Capacity, IdleClock
from conveyor.executors.htcondor import HTCondorExecutor
from conveyor.executors.spark import SparkExecutor


class _Pool:
    connected = True

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.asked = 0

    def slots(self, projection: list[str]) -> list[object]:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [object()] * int(answer)


def test_htcondor_counts_slots_once_per_interval_and_keeps_the_last_answer() -> None:
    executor = HTCondorExecutor({"no_capacity_timeout": 42})
    pool = _Pool([3, ExecutorError("collector busy")])
    executor._pool = pool  # type: ignore[assignment]
    first = executor.capacity()
    assert (first.slots, first.patience) == (3, 42.0)
    assert executor.capacity() == first and pool.asked == 1  # cached
    executor._capacity_at -= 60  # the interval has passed
    assert executor.capacity() == first and pool.asked == 2  # the failure: the last answer


def test_htcondor_without_a_connection_is_unbounded() -> None:
    assert HTCondorExecutor({}).capacity() == UNBOUNDED


class _Engine:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers

    def executors(self) -> int | None:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer) if answer is not None else None


def test_spark_counts_executors_and_says_why_there_are_none() -> None:
    executor = SparkExecutor({"master": "spark://127.0.0.1:1", "no_capacity_timeout": 9})
    executor._engine = _Engine([0, ExecutorError("py4j")])  # type: ignore[assignment]
    none = executor.capacity()
    assert none.slots == 0 and none.patience == 9.0
    assert "no Spark executor is registered with the driver" in none.why
    executor._capacity_at -= 60
    assert executor.capacity() == none  # a failed count: the last answer


def test_spark_before_its_start_is_unbounded() -> None:
    capacity = SparkExecutor({}).capacity()
    assert isinstance(capacity, Capacity) and capacity.slots is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_idle_counts_from_the_start_plus_grace_then_from_the_last_capacity() -> None:
    clock = _Clock()
    idle = IdleClock(60.0, clock)
    assert idle.idle(0) is None  # never started: the runner counts
    idle.started()  # at 0: the first executor may take a minute to come
    clock.now = 50.0
    assert idle.idle(0) == 0.0
    clock.now = 70.0
    assert idle.idle(0) == 10.0
    clock.now = 80.0
    assert idle.idle(2) == 0.0  # capacity seen
    clock.now = 95.0
    assert idle.idle(0) == 15.0  # counted from 80, when it was last seen
    idle.started()  # a later start does not move the count
    assert idle.idle(None) == 0.0  # unknown is not none


def _count(executor: Any) -> Capacity:
    executor._capacity_at = float("-inf")  # past the cache's second
    capacity: Capacity = executor.capacity()
    return capacity


def test_spark_counts_no_capacity_from_its_start_plus_grace() -> None:
    executor = SparkExecutor({"master": "spark://127.0.0.1:1", "start_grace": 60})
    executor._engine = _Engine([0, 0, 1, 0])  # type: ignore[assignment]
    clock = _Clock()
    executor._idle = IdleClock(executor.settings.start_grace, clock)
    executor._idle.started()  # what _start does once the context is up
    clock.now = 50.0
    assert _count(executor).idle == 0.0  # no executor yet, within the grace
    clock.now = 70.0
    assert _count(executor).idle == 10.0
    clock.now = 80.0
    assert _count(executor).idle == 0.0
    clock.now = 95.0
    last = _count(executor)
    assert (last.slots, last.patience, last.idle) == (0, 300.0, 15.0)


def test_dask_counts_no_capacity_from_its_connection_plus_grace() -> None:
    pytest.importorskip("distributed", reason="needs dask (pip install 'conveyor[dask]')")
    from conveyor.executors.dask.executor import DaskExecutor

    class Client:
        status = "running"
        workers: dict[str, Any] = {}

        def scheduler_info(self, n_workers: int = 5) -> dict[str, Any]:
            return {"workers": dict(self.workers)}

    executor = DaskExecutor({"start_grace": 30})
    client = Client()
    executor._client = client
    clock = _Clock()
    executor._idle = IdleClock(executor.settings.start_grace, clock)
    executor._idle.started()

    def count() -> Capacity:
        executor._workers_at = float("-inf")
        return executor.capacity()

    clock.now = 40.0
    assert (count().slots, count().idle) == (0, 10.0)
    client.workers = {"tcp://w:1": {"nthreads": 2}}
    clock.now = 45.0
    assert count().idle == 0.0
    client.workers = {}
    clock.now = 50.0
    assert count().idle == 5.0
