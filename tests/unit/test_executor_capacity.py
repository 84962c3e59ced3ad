"""capacity() of the batch executors: counted from their backend, cached, and a failed
count is the last answer (a busy collector or driver never fails a run)."""

from __future__ import annotations

from typing import Any

from conveyor.errors import ExecutorError
from conveyor.executors.base import UNBOUNDED, Capacity
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
