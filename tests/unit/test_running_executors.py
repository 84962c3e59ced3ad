"""Which executors a run loads, and that a load that fails leaves none open."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.sdk.running import _load_executors
from tests.unit import fakes
from tests.unit.fakes import RecordingExecutor


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from conveyor.executors import registry

    for name in ("b", "z"):
        monkeypatch.setitem(registry.BUILTIN, name, "tests.unit.fakes:RecordingExecutor")
    monkeypatch.setattr(fakes, "BUILT", [])
    monkeypatch.setattr(fakes, "CLOSED", [])
    return fakes.CLOSED


def _project(executors: dict[str, dict[str, Any]]) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(executors=executors))


def _plan(*executors: str) -> Any:
    return SimpleNamespace(steps=[SimpleNamespace(executor=name) for name in executors])


def test_executors_loaded_before_one_that_fails_are_closed(closed: list[str]) -> None:
    given = RecordingExecutor({"label": "given"})  # the caller's: it closes it
    settings = {"b": {"label": "b"}, "z": {"label": "z", "fail": True}}
    with pytest.raises(ExecutorError, match="z cannot reach its pool"):
        _load_executors(_project(settings), _plan("a", "z"), "b", None, {"a": given})
    assert closed == ["b"]


def test_every_executor_named_is_loaded_with_its_settings(closed: list[str]) -> None:
    settings = {"b": {"label": "b"}, "z": {"label": "z"}}
    loaded = _load_executors(_project(settings), _plan("z", None), "b", None, {})
    assert sorted(loaded) == ["b", "z"]
    assert fakes.BUILT == [{"label": "b"}, {"label": "z"}]
    assert closed == []
