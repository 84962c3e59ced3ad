"""The steps in flight (``execute/inflight``) kept indexed: a turn of the runner asks an
executor about its queued steps only while they are queued, and deadlines come due in
order, however many steps are in flight."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from conveyor.execute.inflight import Active, InFlight
from conveyor.executors.base import UNBOUNDED, Capacity, Handle


class Counting:
    """An executor stand-in: says which steps started, counts what it is asked."""

    name = "pool"

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.asked = 0
        self.cancelled: list[str] = []

    def started(self, handles: Sequence[Handle]) -> list[str]:
        self.asked += len(handles)
        return [h.key for h in handles if h.key in self.running]

    def capacity(self) -> Capacity:
        return UNBOUNDED

    def cancel(self, handles: Sequence[Handle]) -> None:
        self.cancelled += [h.key for h in handles]


class Looked(Active):
    """An Active that counts how often its deadline is looked at."""

    looks = 0

    def next_deadline(self) -> float | None:
        Looked.looks += 1
        return super().next_deadline()


def active(executor: Any, key: str, **times: Any) -> Active:
    step = SimpleNamespace(id=key, queue_timeout=times.pop("queue_timeout", None))
    return Looked(step, None, executor, Handle(key, key), **times)  # type: ignore[arg-type]


def test_a_step_is_asked_about_while_queued_only() -> None:
    now = [0.0]
    flight = InFlight(lambda: now[0])
    pool = Counting()
    keys = [f"s{i:03}" for i in range(300)]
    Looked.looks = 0
    for key in keys:
        flight.add(active(pool, key, timeout=1000.0))
    flight.check_deadlines()
    assert pool.asked == 300 and flight.take_started() == []
    pool.running.update(keys)  # all start at once, then end one per turn
    for key in keys:
        flight.check_deadlines()
        assert flight.timeout(0.25) == 0.25
        assert flight.pop(key) is not None
    assert pool.asked == 600  # each asked once more, when it started: not once per turn
    assert not flight
    # a deadline is looked at when it is set and when it comes up, not on every turn
    # (300 turns over 300 steps in flight were 90,000 looks)
    assert Looked.looks < 10 * len(keys)


def test_deadlines_come_due_in_order_and_a_stopped_step_has_none() -> None:
    now = [100.0]
    flight = InFlight(lambda: now[0])
    pool = Counting()
    flight.add(active(pool, "late", timeout=50.0))
    flight.add(active(pool, "queued", queue_deadline=110.0, queue_timeout=10.0))
    flight.add(active(pool, "soon", timeout=5.0))
    pool.running.update({"late", "soon"})
    flight.check_deadlines()  # both start now: deadlines 150 and 105
    assert flight.timeout(60.0) == 5.0
    now[0] = 106.0
    flight.check_deadlines()
    assert pool.cancelled == ["soon"]
    assert flight.timeout(60.0) == 4.0  # the queued one's, at 110
    now[0] = 111.0
    flight.check_deadlines()
    assert pool.cancelled == ["soon", "queued"]
    assert flight.timeout(60.0) == 39.0  # only "late" is left to come due
    assert flight.pop("soon") is not None and flight.pop("queued") is not None
    now[0] = 151.0
    flight.check_deadlines()
    assert pool.cancelled == ["soon", "queued", "late"]
    assert flight.timeout(60.0) == 60.0
