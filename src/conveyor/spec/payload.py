"""A trigger's event payload given as a file (``conveyor run --payload FILE.json``):
a JSON object, read as data only, bounded in size and nesting so a hostile file costs
nothing. ``${{ event.* }}`` reads it (:mod:`conveyor.domain.conditions`)."""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import UsageError

MAX_BYTES = 1 << 20
"""A payload is a button's or a webhook's facts, not a data set."""
MAX_DEPTH = 32


class PayloadError(UsageError):
    """An event payload that is not a small JSON object."""


def parse_payload(data: bytes, display: str) -> dict[str, Any]:
    """The payload in ``data`` (the file ``display``); :class:`PayloadError` says why not."""
    if len(data) > MAX_BYTES:
        raise PayloadError(
            f"{display}: the event payload is {len(data)} bytes; at most {MAX_BYTES} are read"
        )
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{display}: the event payload is not JSON ({_reason(exc)})") from None
    if not isinstance(value, dict):
        raise PayloadError(f"{display}: the event payload must be a JSON object ({{...}})")
    if _depth(value) > MAX_DEPTH:
        raise PayloadError(f"{display}: the event payload nests deeper than {MAX_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0]


def _depth(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            pending.extend((child, level + 1) for child in children)
    return deepest
