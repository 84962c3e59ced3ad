"""Dotscience blocks in a step's log: what is kept, what is dropped, and the bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.execute import dotscience_runs
from conveyor.execute.dotscience_runs import RUNS_NAME, capture, published_runs


def _block(run_id: str, body: object) -> str:
    text = body if isinstance(body, str) else json.dumps(body, indent=4)
    return f"[[DOTSCIENCE-RUN:{run_id}]]{text}[[/DOTSCIENCE-RUN:{run_id}]]"


def test_runs_are_read_in_order_with_dotscience_fields_only(tmp_path: Path) -> None:
    first = {"parameters": {"lr": "0.1"}, "summary": {"auc": "0.9"}, "input": ["a.csv"]}
    second = {
        "description": "again",
        "labels": {"team": "x"},
        "output": ["m.pkl"],
        "secret": "dropped",
        "summary": {"nested": {"a": 1}},
    }
    log = tmp_path / "step.log"
    log.write_text(f"start\n{_block('aa-1', first)}\nmid\n{_block('bb-2', second)}\nend\n")
    runs = published_runs(log)
    assert [r["id"] for r in runs] == ["aa-1", "bb-2"]
    assert runs[0] == {"id": "aa-1", **first}
    assert "secret" not in runs[1]
    assert runs[1]["summary"] == {"nested": "{'a': 1}"}  # a scalar, as text


def test_blocks_that_are_not_runs_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text(
        _block("x", "not json")
        + _block("y", [1, 2])
        + "[[DOTSCIENCE-RUN:z]]{}[[/DOTSCIENCE-RUN:other]]"  # ids that do not pair
        + "[[DOTSCIENCE-RUN:has space]]{}[[/DOTSCIENCE-RUN:has space]]"
    )
    assert published_runs(log) == []
    assert published_runs(tmp_path / "missing.log") == []
    (tmp_path / "empty.log").write_text("")
    assert published_runs(tmp_path / "empty.log") == []


def test_the_number_of_runs_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dotscience_runs, "MAX_RUNS", 3)
    log = tmp_path / "step.log"
    log.write_text("".join(_block(f"r{i}", {}) for i in range(10)))
    assert [r["id"] for r in published_runs(log)] == ["r0", "r1", "r2"]


def test_capture_writes_the_runs_only_when_there_are_some(tmp_path: Path) -> None:
    tracking = tmp_path / "tracking"
    plain = tmp_path / "plain.log"
    plain.write_text("no runs here\n")
    assert capture(str(plain), tracking) is False
    assert not tracking.exists()
    assert capture(None, tracking) is False
    log = tmp_path / "step.log"
    log.write_text(_block("r", {"summary": {"loss": "0.5"}}))
    assert capture(str(log), tracking) is True
    written = json.loads((tracking / RUNS_NAME).read_text())
    assert written == {"runs": [{"id": "r", "summary": {"loss": "0.5"}}]}
