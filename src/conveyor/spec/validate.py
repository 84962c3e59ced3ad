"""Checks of a pipeline file's values that hold whatever the run: run policies, sizes,
matrix entries. The compiler calls them where it reads those values, so that an error
names the file and line of the value, as the loader's own errors do."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from conveyor.domain.types import Policy, Resources
from conveyor.spec.expressions import whole_expression
from conveyor.spec.yamlsource import Loc, SourceMap

if TYPE_CHECKING:  # annotations only: a plain-read spec compiles without pydantic
    from conveyor.spec.model import ResourcesSpec

_POLICY = re.compile(r"^\s*(success|failure|always)\(\)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?)?\s*$")
_DEFAULT = Resources()
_SIZE_MB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def run_policy(expr: str, source: SourceMap, loc: Loc) -> Policy:
    """``if: success()`` (or ``${{ failure() }}``, ``always()``) as its policy."""
    policy = _policy(expr)
    if policy is None:
        raise source.error(
            loc, f"if: {expr!r} is not a run policy; use success(), failure() or always()"
        )
    return policy


@lru_cache(maxsize=64)
def _policy(expr: str) -> Policy | None:
    """Read once per text: every step of a matrix has the same ``if:``."""
    match = _POLICY.match(whole_expression(expr) or expr)
    policy: Policy | None = match.group(1) if match else None  # type: ignore[assignment]
    return policy


def resources(spec: ResourcesSpec | None, source: SourceMap, loc: Loc) -> Resources:
    if spec is None:
        return _DEFAULT  # frozen: one object serves every step that asks for nothing
    return Resources(
        cpus=spec.cpus,
        memory_mb=megabytes(spec.memory, source, (*loc, "memory")),
        gpus=spec.gpus,
        disk_mb=megabytes(spec.disk, source, (*loc, "disk")),
    )


def megabytes(value: int | str | None, source: SourceMap, loc: Loc) -> int | None:
    """A size in MB: a number of MB, or text with a unit (``512M``, ``4G``, ``1.5GiB``)."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise source.error(loc, f"{value!r} is not a size (use MB, or e.g. '512M', '4G')")
    unit = (match.group(2) or "m")[0].lower()
    return max(1, round(float(match.group(1)) * _SIZE_MB[unit]))


def matrix_axes(matrix: dict[str, list[Any]], source: SourceMap, loc: Loc) -> dict[str, list[Any]]:
    """The matrix's axes (each with values); ``include``/``exclude`` entries checked."""
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for key, values in axes.items():
        if not values:
            raise source.error((*loc, "matrix", key), f"matrix axis {key!r} has no values")
    for name in ("exclude", "include"):
        for entry in matrix.get(name, []):
            if not isinstance(entry, dict):
                raise source.error((*loc, "matrix", name), f"matrix {name} entries are mappings")
    return axes
