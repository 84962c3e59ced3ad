"""The one expression syntax, the one value -> text rule and the one input type check
(spec/expressions.py, spec/actions.py); no processes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.spec.actions import check_value
from conveyor.spec.expressions import (
    expressions,
    is_step_output,
    step_output,
    step_outputs,
    value_text,
    whole_expression,
    whole_step_output,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)


@given(JSON)
def test_a_value_is_its_text_or_its_json(value: Any) -> None:
    text = value_text(value)
    assert text == value if isinstance(value, str) else json.loads(text) == value


def test_value_text_of_scalars_and_structures() -> None:
    assert [value_text(v) for v in ("a b", True, False, 3, 0.5, None)] == [
        "a b",
        "true",
        "false",
        "3",
        "0.5",
        "null",
    ]
    assert value_text(["a", 1]) == '["a", 1]'  # JSON, never a Python repr
    assert value_text({"k": "v"}) == '{"k": "v"}'
    assert value_text(range(2)) == "range(0, 2)"  # not data: as Python prints it


def test_expressions_and_step_output_references() -> None:
    text = "x ${{ params.a }} y ${{steps.s-1.outputs.out}} z"
    assert expressions(text) == ["params.a", "steps.s-1.outputs.out"]
    assert list(step_outputs(text)) == [("s-1", "out")]
    assert list(step_outputs(3)) == []
    assert is_step_output(" steps.a.outputs.b ") and not is_step_output("steps.a.b")
    assert whole_expression("  ${{ matrix.x }} ") == "matrix.x"
    assert whole_expression("a ${{ matrix.x }}") is None
    assert whole_step_output(step_output("a", "b")) == ("a", "b")
    assert whole_step_output(f"{step_output('a', 'b')}!") is None


@pytest.mark.parametrize(
    ("kind", "value", "strict", "cast"),
    [
        ("string", "x", "x", "x"),
        ("string", 3, "3", "3"),
        ("string", True, ValueError, "true"),
        ("number", "3", ValueError, 3.0),
        ("number", 3, 3, 3),
        ("integer", "3", ValueError, 3),
        ("integer", 3.0, ValueError, 3),
        ("integer", 3.5, ValueError, ValueError),
        ("integer", True, ValueError, ValueError),
        ("boolean", "True", ValueError, True),
        ("boolean", 1, ValueError, ValueError),
        ("array", "a", ValueError, ValueError),
        ("object", {"a": 1}, {"a": 1}, {"a": 1}),
        ("json", '{"a": 1}', {"a": 1}, {"a": 1}),
        ("file", "../x", ValueError, ValueError),
        ("any", object, object, object),
    ],
)
def test_one_check_and_the_casts_a_format_may_choose(
    kind: str, value: Any, strict: Any, cast: Any
) -> None:
    for casts, expected in ((False, strict), (True, cast)):
        if expected is ValueError:
            with pytest.raises(ValueError):
                check_value(kind, value, casts=casts)
        else:
            result = check_value(kind, value, casts=casts)
            assert result == expected and type(result) is type(expected)


def test_templates_write_a_value_as_action_inputs_do() -> None:
    """A list in ``run`` or ``env`` is JSON, as in an ``INPUT_*`` variable (it was a
    Python repr there, which no shell tool reads)."""
    from conveyor.plan.actions import input_environment
    from conveyor.plan.template import render

    context = {"matrix": {"v": ["a", 1], "n": None}, "params": {"on": True}}
    used: set[str] = set()
    assert render("x=${{ matrix.v }}", context, used) == 'x=["a", 1]'
    assert render("${{ matrix.n }} ${{ params.on }}", context, used) == "null true"
    assert input_environment({"v": ["a", 1]})["INPUT_V"] == '["a", 1]'
