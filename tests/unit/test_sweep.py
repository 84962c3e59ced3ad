"""Sweeps: the values of `-p NAME=A,B` and their combinations."""

from __future__ import annotations

import pytest

from conveyor.errors import ParamError
from conveyor.sdk.sweep import MAX_COMBINATIONS, combinations, split_values


def test_command_line_lists_are_split_and_deduplicated() -> None:
    assert split_values({"lr": "0.1, 0.01,0.1", "depth": "3"}) == {
        "lr": ["0.1", "0.01"],
        "depth": ["3"],
    }
    with pytest.raises(ParamError, match="an empty value"):
        split_values({"lr": "0.1,"})


def test_every_combination_once_the_first_name_slowest() -> None:
    assert combinations({"lr": [0.1, 0.01], "depth": [3, 5]}) == [
        {"lr": 0.1, "depth": 3},
        {"lr": 0.1, "depth": 5},
        {"lr": 0.01, "depth": 3},
        {"lr": 0.01, "depth": 5},
    ]


def test_an_empty_or_oversized_sweep_is_refused() -> None:
    with pytest.raises(ParamError, match="nothing to sweep"):
        combinations({})
    with pytest.raises(ParamError, match="no value for lr"):
        combinations({"lr": []})
    too_many = {"a": list(range(MAX_COMBINATIONS)), "b": [1, 2]}
    with pytest.raises(ParamError, match=f"makes {2 * MAX_COMBINATIONS} runs"):
        combinations(too_many)
