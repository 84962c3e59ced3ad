"""A step's log is the step's text: the Dotscience blocks read from it (``ds.publish()``)
are data within bounds. A nested-JSON bomb, an oversized block, a flood of markers and a
huge sparse log neither crash the run's file work nor get kept whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.execute import dotscience_runs
from conveyor.execute.dotscience_runs import MAX_BLOCK_BYTES, published_runs


def test_deeply_nested_json_in_a_block_is_no_run_and_no_crash(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    bomb = "[" * 200_000 + "]" * 200_000
    log.write_text(f"[[DOTSCIENCE-RUN:a]]{bomb}[[/DOTSCIENCE-RUN:a]]")
    assert published_runs(log) == []  # json.loads raises RecursionError here, not ValueError


def test_a_block_larger_than_the_bound_is_not_read(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    body = json.dumps({"description": "x" * (MAX_BLOCK_BYTES + 10)})
    log.write_text(f"[[DOTSCIENCE-RUN:a]]{body}[[/DOTSCIENCE-RUN:a]]")
    assert published_runs(log) == []


def test_a_flood_of_runs_keeps_only_the_first_ones(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    one = '[[DOTSCIENCE-RUN:r]]{"summary": {"a": 1}}[[/DOTSCIENCE-RUN:r]]'
    log.write_text(one * (dotscience_runs.MAX_RUNS + 500))
    assert len(published_runs(log)) == dotscience_runs.MAX_RUNS


def test_a_log_is_searched_up_to_its_bound_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dotscience_runs, "MAX_LOG_BYTES", 1 << 20)
    log = tmp_path / "step.log"
    with open(log, "wb") as handle:
        handle.seek(2 << 20)  # sparse: 2 MiB of zeros, then a run past the bound
        handle.write(b'[[DOTSCIENCE-RUN:late]]{"summary": {}}[[/DOTSCIENCE-RUN:late]]')
    assert published_runs(log) == []


def test_markers_without_an_end_cost_a_bounded_search(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    flood = "[[DOTSCIENCE-RUN:x]]" + "y" * 100
    later = '[[DOTSCIENCE-RUN:r]]{"summary": {}}[[/DOTSCIENCE-RUN:r]]'
    log.write_text(flood * (dotscience_runs.MAX_MARKERS + 10) + later)
    assert published_runs(log) == []  # the markers looked at ran out before the run
