"""Interrupted-run recovery hands the recorded handles of unfinished steps to executors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from conveyor.executors.base import Handle, Recovered
from conveyor.metadata.records import EventRecord
from conveyor.sdk import recovery


def _started(step: str, executor: str, backend_id: str, attempt: int = 1) -> EventRecord:
    data = {"attempt": attempt, "backend_id": backend_id, "executor": executor}
    return EventRecord("r1", "step-started", 0.0, step, data)


EVENTS = [
    _started("a.one", "local", "101"),
    EventRecord("r1", "step-finished", 1.0, "a.one", {}),
    _started("a.two", "local", "102", attempt=2),
    _started("b.one", "htcondor", "htcondor:" + "0" * 32 + "/j1"),
    EventRecord("r1", "run-started", 0.0),
]


def test_only_unfinished_steps_are_handed_over_by_executor() -> None:
    assert recovery.unfinished_handles(EVENTS) == {
        "local": [Handle("r1/a.two/2", "102")],
        "htcondor": [Handle("r1/b.one/1", "htcondor:" + "0" * 32 + "/j1")],
    }


class _Fake:
    def __init__(self, name: str, calls: list[tuple[str, list[Handle]]]) -> None:
        self.name, self.calls = name, calls

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        self.calls.append((self.name, list(handles)))
        return [Recovered(h.key, True, "ended") for h in handles]

    def close(self) -> None:
        self.calls.append((self.name, []))


@pytest.mark.parametrize("same_host", [True, False])
def test_local_handles_are_recovered_only_on_their_host(
    monkeypatch: pytest.MonkeyPatch, same_host: bool
) -> None:
    calls: list[tuple[str, list[Handle]]] = []
    seen: dict[str, Any] = {}

    def load(name: str, settings: Mapping[str, Any] | None = None) -> _Fake:
        seen[name] = settings
        return _Fake(name, calls)

    monkeypatch.setattr(recovery, "load_executor", load)
    done = recovery.recover_leftovers(EVENTS, {"htcondor": {"schedd": "s"}}, same_host)
    assert seen["htcondor"] == {"schedd": "s"}
    assert ("local" in seen) is same_host
    assert {r.key: r.ended for r in done} == {"r1/a.two/2": same_host, "r1/b.one/1": True}
    assert calls[1::2] == [(name, []) for name, _ in calls[0::2]]  # each closed after
