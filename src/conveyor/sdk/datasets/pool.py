"""A put's batches on a few threads, results in order (``concurrent.futures`` would
import ``logging`` and more: a few ms of every put's start-up, for one call)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

Part = TypeVar("Part")
Result = TypeVar("Result")


def in_order(
    work: Callable[[Part], Result], parts: Sequence[Part], threads: int
) -> Iterator[Result]:
    """``work(part)`` of every part on up to ``threads`` threads, yielded in the parts'
    order. After an error the threads take no more parts; the first error in the parts'
    order is raised once the threads are joined, as they are when the caller stops."""
    done: queue.SimpleQueue[tuple[int, Result | None, BaseException | None]]
    done = queue.SimpleQueue()
    lock = threading.Lock()
    todo = iter(enumerate(parts))
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                item = next(todo, None)
            if item is None:
                return
            index, part = item
            try:
                done.put((index, work(part), None))
            except BaseException as exc:  # handed to the caller, in order
                stop.set()  # every part before this one was taken already
                done.put((index, None, exc))
                return

    pool = [
        threading.Thread(target=worker, name="conveyor-put", daemon=True)
        for _ in range(max(1, min(threads, len(parts))))
    ]
    for thread in pool:
        thread.start()
    try:
        # every part before the first failed one was taken before it, so each index
        # waited for arrives: a value, or the error that is raised
        arrived: dict[int, tuple[Result | None, BaseException | None]] = {}
        for index in range(len(parts)):
            while index not in arrived:
                got, value, error = done.get()
                arrived[got] = (value, error)
            value, error = arrived.pop(index)
            if error is not None:
                raise error
            yield value  # type: ignore[misc]  # None only with an error
    finally:
        stop.set()
        for thread in pool:
            thread.join()
