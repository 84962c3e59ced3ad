"""Action steps: inputs that refer to outputs of earlier steps, and outputs printed as
``::name::<json>`` lines. Pure functions: the compiler checks the references, the runner
resolves them just before a step starts and reads outputs from a finished step's log.

Input values are never spliced into shell text: they reach the step as ``INPUT_<NAME>``
variables and as one JSON document in ``CONVEYOR_ACTION_INPUTS`` (which the command
passes on as a single argument, ``"$CONVEYOR_ACTION_INPUTS"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.spec import datatorch_rules
from conveyor.spec.expressions import (
    STEP_OUTPUT,
    has_expression,
    step_outputs,
    value_text,
    whole_step_output,
)

if TYPE_CHECKING:  # annotations only: the runner imports this module, never pydantic
    from conveyor.spec.model import JobSpec
    from conveyor.spec.yamlsource import Loc, SourceMap

INPUTS_VARIABLE = "CONVEYOR_ACTION_INPUTS"
_OUTPUT_LINE = re.compile(r"^::([A-Za-z0-9_.-]+)::(.*)$")


class UnresolvedOutput(LookupError):
    """An input refers to an output the earlier step did not set."""


class BadOutput(ValueError):
    """A step's output line breaks its format's rule (DataTorch: a value that is not JSON)."""


DATATORCH = "datatorch"
"""The ``rules`` of a DataTorch action step (:mod:`conveyor.spec.datatorch_rules`)."""


def check_references(job: JobSpec, index: int, ids: list[str], source: SourceMap, loc: Loc) -> None:
    """Every reference names an earlier step of the same job (``ids``: the job's step
    ids) and an output that step's action declares (any name for a DataTorch action,
    which keeps every output it prints)."""
    step = job.steps[index]
    if step.action is None:
        return
    earlier = {
        ident: other.action.outputs if other.action else []
        for ident, other in zip(ids[:index], job.steps[:index], strict=True)
    }
    open_outputs = {
        ident
        for ident, other in zip(ids[:index], job.steps[:index], strict=True)
        if other.action is not None and other.action.rules == DATATORCH
    }
    for key, value in step.action.inputs.items():
        where = (*loc, "action", "inputs", key)
        for name, output in step_outputs(value):
            if name not in earlier:
                known = ", ".join(earlier) or "none"
                raise source.error(
                    where,
                    f"input {key!r} refers to steps.{name}, which is not an earlier step of "
                    f"this job (earlier steps: {known})",
                )
            if output not in earlier[name] and name not in open_outputs:
                declared = ", ".join(earlier[name]) or "none"
                raise source.error(
                    where,
                    f"input {key!r} refers to steps.{name}.outputs.{output}, which that step's "
                    f"action does not declare (outputs: {declared})",
                )


def resolve_inputs(
    inputs: Mapping[str, Any], job: str, outputs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Input values with references replaced by the outputs of finished steps
    (``outputs`` is keyed by full step id, ``job.step``)."""

    def lookup(name: str, key: str) -> Any:
        produced = outputs.get(f"{job}.{name}", {})
        if key not in produced:
            raise UnresolvedOutput(f"steps.{name}.outputs.{key}")
        return produced[key]

    resolved: dict[str, Any] = {}
    for key, value in inputs.items():
        if not isinstance(value, str) or not has_expression(value):
            resolved[key] = value
            continue
        whole = whole_step_output(value)
        if whole:  # a whole-string reference keeps the output's type
            resolved[key] = lookup(*whole)
        else:
            resolved[key] = STEP_OUTPUT.sub(
                lambda m: value_text(lookup(m.group(1), m.group(2))), value
            )
    return resolved


def input_environment(inputs: Mapping[str, Any]) -> dict[str, str]:
    env = {f"INPUT_{_variable(key)}": value_text(value) for key, value in inputs.items()}
    env[INPUTS_VARIABLE] = json.dumps(dict(inputs), sort_keys=True)
    return env


def _variable(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key).upper()


def cast_inputs(
    inputs: Mapping[str, Any], types: Mapping[str, str], rules: str | None
) -> dict[str, Any]:
    """Resolved inputs cast to their declared types by the format's rule (DataTorch's
    casts; ``BadOutput``-free: a value that cannot be cast is a ``ValueError``)."""
    if rules != DATATORCH:
        return dict(inputs)
    return {key: datatorch_rules.cast(types.get(key), value) for key, value in inputs.items()}


def parse_outputs(log: str, declared: tuple[str, ...], rules: str | None = None) -> dict[str, Any]:
    """Outputs set by ``::name::<json>`` lines (the last one of a name wins). A value that
    is not JSON is kept as text; names the action does not declare are ignored.

    Under DataTorch's ``rules`` every ``prefix::name::<json>`` line sets ``name``,
    declared or not, and one that does not hold JSON is a :class:`BadOutput`."""
    found: dict[str, Any] = {}
    if rules == DATATORCH:
        for line in log.splitlines():
            try:
                output = datatorch_rules.output_line(line)
            except ValueError as exc:
                raise BadOutput(str(exc)) from None
            if output is not None:
                found[output[0]] = output[1]
        return found
    for line in log.splitlines():
        match = _OUTPUT_LINE.match(line.strip())
        if not match or match.group(1) not in declared:
            continue
        try:
            found[match.group(1)] = json.loads(match.group(2))
        except ValueError:
            found[match.group(1)] = match.group(2)
    return found
