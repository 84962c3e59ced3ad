"""DataTorch 0.8.0's run-time rules (its action.py casts, its runner's output lines), and
how an action step of a DataTorch pipeline applies them at launch and at its end."""

from __future__ import annotations

import pytest

from conveyor.plan import actions
from conveyor.spec.datatorch_rules import cast, output_line


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("boolean", "false", True),  # Python's bool: any non-empty text is true
        ("boolean", "", False),
        ("boolean", 0, False),
        ("integer", "3", 3),
        ("integer", 3.9, 3),
        ("float", "1e3", 1000.0),
        ("string", True, "True"),
        ("string", 7, "7"),
        ("array", "[1, 2]", [1, 2]),
        ("list", [3], [3]),
        ("object", "text", "text"),  # a type name DataTorch does not cast by
        (None, "3", "3"),
        ("integer", None, None),
    ],
)
def test_inputs_are_cast_as_datatorch_casts(
    kind: str | None, value: object, expected: object
) -> None:
    assert cast(kind, value) == expected
    assert type(cast(kind, value)) is type(expected)


@pytest.mark.parametrize(("kind", "value"), [("integer", "3.5"), ("float", "x"), ("array", "[")])
def test_a_value_that_cannot_be_cast_is_refused(kind: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"cannot be cast|not a JSON list"):
        cast(kind, value)


def test_output_lines_are_split_at_their_first_two_separators() -> None:
    assert output_line("::sum::5") == ("sum", 5)
    assert output_line("log: a::b::[1, 2]") == ("b", [1, 2])
    assert output_line("just text") is None
    with pytest.raises(ValueError, match="does not hold JSON"):
        output_line("::broken::not json")


def test_datatorch_steps_keep_undeclared_outputs_and_refuse_bad_lines() -> None:
    log = 'start\n::sum::5\n::extra::{"k": 1}\n'
    assert actions.parse_outputs(log, ("sum",), actions.DATATORCH) == {"sum": 5, "extra": {"k": 1}}
    assert actions.parse_outputs(log, ("sum",)) == {"sum": 5}  # native actions: declared only
    with pytest.raises(actions.BadOutput):
        actions.parse_outputs("::x::nope\n", (), actions.DATATORCH)
    assert actions.parse_outputs("::x::nope\n", ("x",)) == {"x": "nope"}


def test_resolved_inputs_are_cast_at_launch() -> None:
    types = {"a": "integer", "flag": "boolean"}
    cast_inputs = actions.cast_inputs({"a": "4", "flag": "no"}, types, actions.DATATORCH)
    assert cast_inputs == {"a": 4, "flag": True}
    assert actions.cast_inputs({"a": "4"}, types, None) == {"a": "4"}
