"""``in_order``: a put's batches on threads, results in order, the first error raised."""

from __future__ import annotations

import threading
import time

import pytest

from conveyor.sdk.datasets.pool import in_order


def test_results_come_in_the_parts_order_from_several_threads() -> None:
    names: set[str] = set()
    started = threading.Barrier(3, timeout=30)

    def work(part: int) -> int:
        if part < 3:
            started.wait()  # the first three run at once, on three threads
        names.add(threading.current_thread().name + str(threading.get_ident()))
        return part * part

    assert list(in_order(work, list(range(50)), 3)) == [i * i for i in range(50)]
    assert len(names) == 3


def test_no_parts_no_threads() -> None:
    assert list(in_order(lambda part: part, [], 4)) == []


def test_the_first_error_in_order_is_raised_and_later_parts_are_not_started() -> None:
    taken: list[int] = []
    lock = threading.Lock()

    def work(part: int) -> int:
        with lock:
            taken.append(part)
        if part in (3, 4):
            raise ValueError(f"part {part}")
        time.sleep(0.001)  # lets the failing thread run (not timed)
        return part

    got: list[int] = []
    with pytest.raises(ValueError, match="part 3"):
        for value in in_order(work, list(range(1000)), 2):
            got.append(value)
    assert got == [0, 1, 2]
    assert len(taken) < 1000  # the threads stopped taking parts


def test_a_caller_that_stops_early_leaves_no_thread_running() -> None:
    before = threading.active_count()
    results = in_order(lambda part: part, list(range(100)), 4)
    assert next(results) == 0
    results.close()
    assert threading.active_count() == before
