"""``conveyor run`` in this process keeps the cyclic collector off while the plan and the
records load, sets what was loaded aside when the run's loop starts, collects during the
loop, and leaves the collector as it found it for a caller that goes on."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import conveyor.sdk.running
from conveyor.cli import local_run, main


@pytest.fixture
def seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What the collector was told and its state at the moments that matter."""
    (tmp_path / "conveyor.yml").write_text("jobs: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("_CONVEYOR_COMPLETE", raising=False)
    events: list[tuple[str, Any]] = []
    monkeypatch.setattr(gc, "freeze", lambda: events.append(("freeze", None)))
    monkeypatch.setattr(gc, "unfreeze", lambda: events.append(("unfreeze", None)))
    monkeypatch.setattr(local_run, "cancel_on_signals", lambda r: events.append(("wired", r)))

    def start_run(project: Any, request: Any, hooks: Any) -> Any:
        events.append(("loading, collector on", gc.isenabled()))
        hooks.on_runner("the runner")
        events.append(("loop, collector on", gc.isenabled()))
        return SimpleNamespace(status="succeeded")

    monkeypatch.setattr(conveyor.sdk.running, "start_run", start_run)
    monkeypatch.setattr(sys, "argv", ["conveyor", "run"])
    return events


def test_the_collector_is_off_while_loading_and_on_for_the_loop(
    seen: list[tuple[str, Any]],
) -> None:
    was = gc.isenabled()
    with pytest.raises(SystemExit) as exited:
        main.main()
    assert exited.value.code == 0
    assert seen[:4] == [
        ("loading, collector on", False),
        ("freeze", None),
        ("wired", "the runner"),  # Ctrl-C still cancels the run
        ("loop, collector on", True),
    ]
    assert ("unfreeze", None) in seen[4:]  # what was set aside is collected as before
    assert gc.isenabled() == was
