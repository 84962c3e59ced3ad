"""Large dataclasses compare, hash and print by their fields as ``dataclass(eq=True)`` would,
with methods written once (``domain.types.FieldValues``) instead of generated per class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace

import pytest

from conveyor.domain.types import FieldValues
from conveyor.plan.model import StepPlan
from conveyor.sdk.settings import Settings


@dataclass(frozen=True, eq=False, repr=False)
class _Point(FieldValues):
    x: int
    y: int = 0
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class _Generated:
    x: int
    y: int = 0
    note: str = field(default="", compare=False, repr=False)


def test_equality_and_hash_follow_the_compared_fields() -> None:
    assert _Point(1, 2) == _Point(1, 2, note="other")
    assert _Point(1, 2) != _Point(1, 3)
    assert hash(_Point(1, 2)) == hash(_Point(1, 2, note="other"))
    assert hash(_Point(1, 2)) == hash(_Generated(1, 2))  # the same tuple is hashed
    assert _Point(1, 2) != _Generated(1, 2)  # another class is never equal


def test_repr_is_the_generated_one() -> None:
    assert repr(_Point(1, 2)).replace("_Point", "_Generated") == repr(_Generated(1, 2))


def test_a_step_plan_compares_by_value_and_stays_frozen() -> None:
    step = StepPlan("j.s", "j", "s", "true", inputs=("a",))
    assert step == StepPlan("j.s", "j", "s", "true", inputs=("a",))
    assert step != replace(step, command="false")
    assert len({step, replace(step)}) == 1
    assert repr(step).startswith("StepPlan(id='j.s', job='j', name='s', command='true'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.command = "x"  # type: ignore[misc]
    assert "__eq__" not in vars(StepPlan)  # the shared method, not a generated one


def test_settings_compare_by_value() -> None:
    assert Settings() == Settings()
    assert Settings(parallelism=2) != Settings()
    assert "__eq__" not in vars(Settings)
