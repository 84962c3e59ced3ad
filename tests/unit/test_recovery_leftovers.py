"""The jobs a broken executor could not remove are recovered by the next command."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Handle, Recovered
from conveyor.metadata.sql import open_repository
from conveyor.sdk import recovery
from conveyor.sdk.project import Project
from conveyor.sdk.running import _record_leftovers

HANDLE = Handle("r1/j.a/1", "htcondor:" + "0" * 32 + "/j1")


class _Pool:
    def __init__(self, reachable: bool, calls: list[list[Handle]]) -> None:
        self.reachable, self.calls = reachable, calls

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        if not self.reachable:
            raise ExecutorError("cannot reach the HTCondor schedd")
        self.calls.append(list(handles))
        return [Recovered(h.key, True, "removed HTCondor job 1.0") for h in handles]

    def close(self) -> None:
        pass


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reachable: list[bool]) -> Any:
    calls: list[list[Handle]] = []

    def load(name: str, settings: Mapping[str, Any] | None = None) -> _Pool:
        assert name == "htcondor"
        return _Pool(reachable[0], calls)

    monkeypatch.setattr(recovery, "load_executor", load)
    records = open_repository(f"sqlite:///{tmp_path / 'records.db'}")
    project = Project(tmp_path, records=records)
    project.ensure_state_dir()
    _record_leftovers(project, "r1", [("htcondor", HANDLE)])  # what a run records
    return project, records, calls


def test_the_next_command_removes_what_a_broken_executor_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reachable = [False]
    project, records, calls = _project(tmp_path, monkeypatch, reachable)
    with project.run_lock(wait=False):
        pass  # the pool is still down: kept for the next command
    assert calls == []
    reachable[0] = True
    with project.run_lock(wait=False):
        pass
    assert calls == [[HANDLE]]
    (event,) = [e for e in records.events("r1") if e.kind == "leftovers-recovered"]
    assert event.data == {"recovered": [f"{HANDLE.key}: removed HTCondor job 1.0"]}
    with project.run_lock(wait=False):
        pass  # done once: not asked again
    assert calls == [[HANDLE]]
