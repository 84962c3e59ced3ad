"""Reading a shaped dataclass builds it as its constructor would, without calling it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from conveyor.domain.jsonshape import JsonShape
from conveyor.plan.model import StepPlan


@dataclass(frozen=True)
class _Frozen(JsonShape):
    name: str
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Checked(JsonShape):
    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("negative")


def test_a_decoded_object_equals_the_constructed_one() -> None:
    assert _Frozen.from_json({"name": "a"}) == _Frozen("a")
    assert _Frozen.from_json({"name": "a", "tags": ["x"]}) == _Frozen("a", ("x",))
    step = StepPlan("j.s", "j", "s", "true", inputs=("in",), outputs=("out",), retries=2)
    assert StepPlan.from_json(step.to_json()) == step
    assert vars(StepPlan.from_json(step.to_json())) == vars(step)


def test_a_default_factory_gives_each_decoded_object_its_own_value() -> None:
    first, second = _Frozen.from_json({"name": "a"}), _Frozen.from_json({"name": "b"})
    first.labels["k"] = "v"
    assert second.labels == {}


def test_a_missing_required_field_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="_Frozen"):
        _Frozen.from_json({"tags": []})


def test_a_class_with_post_init_still_runs_it() -> None:
    with pytest.raises(ValueError, match="negative"):
        _Checked.from_json({"size": -1})
