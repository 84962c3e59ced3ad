"""The ``${{ ... }}`` expression syntax of pipeline text, and how a value becomes text.

Every format and every layer finds expressions with :data:`EXPRESSION` and writes a
value into text (a command, an environment variable, an action input) with
:func:`value_text`. What an expression means is decided elsewhere: the plan renders
``params``, ``matrix`` and ``datum`` (:mod:`conveyor.plan.template`), the runner
resolves ``steps.ID.outputs.KEY`` just before a step starts
(:mod:`conveyor.plan.actions`). Stdlib only: the runner imports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
"""One ``${{ expr }}``; group 1 is the expression without its braces and spaces."""
_STEP_OUTPUT = re.compile(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")
STEP_OUTPUT = re.compile(EXPRESSION.pattern.replace("(.*?)", _STEP_OUTPUT.pattern))
"""``${{ steps.ID.outputs.KEY }}``: groups 1 and 2 are the step id and the output."""
_WHOLE_STEP_OUTPUT = re.compile(rf"^\s*{STEP_OUTPUT.pattern}\s*$")


def has_expression(text: str) -> bool:
    return "${{" in text


def expressions(text: str) -> list[str]:
    """The expressions in ``text``, without their braces."""
    return EXPRESSION.findall(text)


def whole_expression(text: str) -> str | None:
    """The expression when ``text`` is one ``${{ }}`` and nothing else (its value then
    keeps its type), else None."""
    match = EXPRESSION.fullmatch(text.strip())
    return match.group(1) if match else None


def is_step_output(expr: str) -> bool:
    """``expr`` (without braces) names an output of an earlier step."""
    return _STEP_OUTPUT.fullmatch(expr.strip()) is not None


def step_output(step: str, key: str) -> str:
    """The expression that refers to output ``key`` of step ``step``."""
    return f"${{{{ steps.{step}.outputs.{key} }}}}"


def step_outputs(value: Any) -> Iterator[tuple[str, str]]:
    """``(step, output)`` pairs a (top-level string) value refers to."""
    if isinstance(value, str):
        for match in STEP_OUTPUT.finditer(value):
            yield match.group(1), match.group(2)


def whole_step_output(text: str) -> tuple[str, str] | None:
    """``(step, output)`` when ``text`` is one step output reference and nothing else."""
    match = _WHOLE_STEP_OUTPUT.match(text)
    return (match.group(1), match.group(2)) if match else None


def value_text(value: Any) -> str:
    """A value as text (in a command, an environment variable, an input): a string as it
    is, anything else as JSON (``true``, ``3``, ``null``, ``["a", "b"]``)."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # what json.dumps gives, at a fraction of its cost
        return str(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # not data (what a sandboxed expression may return)
        return str(value)
