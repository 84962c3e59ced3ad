"""A run's parameter values checked against the pipeline's declared params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.domain.types import ParamValue
from conveyor.errors import ParamError
from conveyor.spec.expressions import value_text
from conveyor.spec.yamlsource import SourceMap

if TYPE_CHECKING:  # annotations only: a plain-read spec compiles without pydantic
    from conveyor.spec.model import ParamSpec, PipelineSpec


def check_params(spec: PipelineSpec, given: Mapping[str, ParamValue]) -> dict[str, Any]:
    """Given values checked against the declared params: a typed value (JSON from the
    API, a past run's record) must fit its declared type; text (the command line, which
    has nothing else) is read as that type."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        declared = spec.params.get(name)
        if declared is None:
            known = ", ".join(sorted(spec.params)) or "none are declared"
            raise ParamError(f"unknown parameter {name!r} (declared: {known})")
        values[name] = coerce_param(name, declared, value)
    return values


def coerce_param(name: str, declared: ParamSpec, value: ParamValue) -> Any:
    if not isinstance(value, str):
        return _typed_param(name, declared, value)
    try:
        if declared.type == "int":
            return int(value)
        if declared.type == "float":
            return float(value)
        if declared.type == "bool":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
    except ValueError:
        raise ParamError(
            f"parameter {name!r} is {declared.type}, and {value!r} is not a valid {declared.type}"
        ) from None
    return value


def _typed_param(name: str, declared: ParamSpec, value: int | float | bool) -> Any:
    if declared.type == "str":
        return value_text(value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if declared.type == "int" and number and isinstance(value, int):
        return value
    if declared.type == "float" and number:
        return float(value)
    if declared.type == "bool" and isinstance(value, bool):
        return value
    raise ParamError(
        f"parameter {name!r} is {declared.type}, and {value!r} is not a {declared.type}"
    )


def param_default(source: SourceMap, name: str, declared: ParamSpec) -> Any:
    """The declared default, checked against the declared type (file:line when not)."""
    value = declared.default
    if declared.type == "str":
        return value_text(value)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[declared.type]
    if not ok:
        raise source.error(
            ("params", name, "default"),
            f"default of parameter {name!r} is {value!r}, not a {declared.type}",
        )
    return float(value) if declared.type == "float" and value is not None else value
