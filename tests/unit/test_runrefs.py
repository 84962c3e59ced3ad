"""A run named by its number: ``#N`` always, bare digits under 4 characters; anything
else names a run by id, prefix or ``latest``."""

from __future__ import annotations

import pytest

from conveyor.domain.runrefs import run_number
from conveyor.errors import UsageError


@pytest.mark.parametrize(
    ("ref", "number"),
    [("#12", 12), ("#1234", 1234), ("12", 12), ("999", 999), ("#007", 7)],
)
def test_numbers(ref: str, number: int) -> None:
    assert run_number(ref) == number


@pytest.mark.parametrize("ref", ["1234", "latest", "abc1", "0a1b2c3d4e5f", "", "\uff11\uff12"])
def test_other_references_are_not_numbers(ref: str) -> None:
    assert run_number(ref) is None


@pytest.mark.parametrize("ref", ["#", "#x", "#-1", "#1.5", "#\uff11\uff12", "#" + "9" * 10, "# 1"])
def test_a_hash_without_a_number_is_refused_in_one_sentence(ref: str) -> None:
    with pytest.raises(
        UsageError, match=r"is not a run number: write # and its digits, e\.g\. #12$"
    ):
        run_number(ref)
