"""Ending what a run killed mid-way left running: each executor's ``recover`` is given
the handles recorded (``step-started`` events) for the step runs that never finished."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import ExecutorError, UsageError
from conveyor.executors.base import Handle, Recovered
from conveyor.executors.registry import load_executor
from conveyor.metadata.records import EventRecord

LEFTOVERS_EVENT = "executor-leftovers"
"""A run's event listing the jobs a broken executor could not remove (``handles``)."""
_LEFTOVERS_FILE = "leftovers"
"""In the state directory: ids of runs with leftovers, for the next command."""

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


def note_leftovers(state_dir: Path, run_id: str) -> None:
    """Have the next command recover what run ``run_id``'s broken executor left."""
    with open(state_dir / _LEFTOVERS_FILE, "a", encoding="utf-8") as handle:
        handle.write(run_id + "\n")


def recover_broken(
    state_dir: Path,
    records_events: Callable[[str], Sequence[EventRecord]],
    settings: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[Recovered]]:
    """By run id, what each executor did about the jobs it could not remove when it
    broke; a run whose executor still cannot be reached is kept for the next command."""
    path = state_dir / _LEFTOVERS_FILE
    if not path.exists():
        return {}
    done: dict[str, list[Recovered]] = {}
    kept: list[str] = []
    for run_id in dict.fromkeys(path.read_text(encoding="utf-8").split()):
        by_executor: dict[str, list[Handle]] = {}
        for event in records_events(run_id):
            if event.kind == LEFTOVERS_EVENT:
                for name, key, backend_id in event.data.get("handles", []):
                    by_executor.setdefault(str(name), []).append(Handle(str(key), str(backend_id)))
        try:
            done[run_id] = [r for n, h in by_executor.items() for r in _recover(n, h, settings)]
        except (ExecutorError, UsageError):
            kept.append(run_id)
    if kept:
        path.write_text("".join(f"{run_id}\n" for run_id in kept), encoding="utf-8")
    else:
        path.unlink()
    return done


def _recover(
    name: str, handles: list[Handle], settings: Mapping[str, Mapping[str, Any]]
) -> list[Recovered]:
    executor = load_executor(name, settings.get(name))
    try:
        return executor.recover(handles)
    finally:
        executor.close()
