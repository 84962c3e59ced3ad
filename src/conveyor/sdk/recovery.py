"""Ending what a run killed mid-way left running: each executor's ``recover`` is given
the handles recorded (``step-started`` events) for the step runs that never finished."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.errors import ExecutorError, UsageError
from conveyor.executors.base import Handle, Recovered
from conveyor.executors.registry import load_executor
from conveyor.metadata.records import EventRecord

HOST_BOUND = frozenset({"local"})
"""Executors whose handles mean something only on the host that recorded them."""


def unfinished_handles(events: Sequence[EventRecord]) -> dict[str, list[Handle]]:
    """By executor name, the handles of steps started and never finished."""
    started: dict[str, tuple[str, Handle]] = {}
    for event in events:
        if event.step_id is None:
            continue
        if event.kind == "step-started":
            data = event.data
            key = f"{event.run_id}/{event.step_id}/{data.get('attempt', 1)}"
            handle = Handle(key, str(data.get("backend_id", "")))
            started[event.step_id] = (str(data.get("executor", "local")), handle)
        elif event.kind == "step-finished":
            started.pop(event.step_id, None)
    by_executor: dict[str, list[Handle]] = {}
    for name, handle in started.values():
        by_executor.setdefault(name, []).append(handle)
    return by_executor


def recover_leftovers(
    events: Sequence[EventRecord],
    settings: Mapping[str, Mapping[str, Any]],
    same_host: bool,
) -> list[Recovered]:
    """Ask each executor to end the run's unfinished step runs; best effort (a pool that
    cannot be reached or an executor no longer installed is an answer, not an error).
    ``settings``: the executors' tables; ``same_host``: this host recorded the run."""
    done: list[Recovered] = []
    for name, handles in unfinished_handles(events).items():
        if name in HOST_BOUND and not same_host:
            done += [Recovered(h.key, False, "recorded on another host") for h in handles]
            continue
        try:
            executor = load_executor(name, settings.get(name))
        except (ExecutorError, UsageError) as exc:
            done += [Recovered(h.key, False, str(exc)) for h in handles]
            continue
        try:
            done += executor.recover(handles)
        except ExecutorError as exc:
            done += [Recovered(h.key, False, str(exc)) for h in handles]
        finally:
            executor.close()
    return done
