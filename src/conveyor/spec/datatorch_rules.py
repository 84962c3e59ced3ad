"""DataTorch 0.8.0's run-time rules, as its runner applies them (stdlib only: the runner
imports this at launch): how an input is cast to its declared type, and how a line of
an action's output sets an output.

Its casts are Python's own: ``bool("false")`` is true (any non-empty text is), an
``integer`` is ``int(value)`` (``"3.5"`` fails, ``3.9`` is 3), a ``string`` is
``str(value)`` (``True`` -> ``"True"``), an ``array``/``list`` given as text is parsed
as JSON; other type names leave the value as it is.
"""

from __future__ import annotations

import json
from typing import Any

_CASTS: dict[str, Any] = {"float": float, "integer": int, "string": str, "boolean": bool}


def cast(kind: str | None, value: Any) -> Any:
    """``value`` as DataTorch casts an input of type ``kind``; ``ValueError`` when it
    cannot be (DataTorch fails the step there)."""
    if value is None or not kind:
        return value
    if kind in _CASTS:
        try:
            return _CASTS[kind](value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} cannot be cast to {kind}") from None
    if kind in ("array", "list") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a JSON list") from None
    return value


def output_line(line: str) -> tuple[str, Any] | None:
    """The output a line sets: DataTorch splits every line at its first two ``::``
    (``prefix::name::<json>``, the prefix ignored); a value that is not JSON is a
    ``ValueError`` (the step fails)."""
    parts = line.split("::", 2)
    if len(parts) != 3:
        return None
    _, name, value = parts
    try:
        return name, json.loads(value)
    except ValueError:
        raise ValueError(
            f"the output line for {name!r} does not hold JSON: {value.strip()[:80]!r}"
        ) from None
