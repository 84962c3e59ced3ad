"""Helpers shared by the loaders of foreign formats.

A foreign file is checked key by key against what its format allows (a key Conveyor
does not support is refused by name, with its position), then rewritten as native
data. :class:`Translation` keeps, for every native location it writes, the position of
the foreign key it came from, so later errors (from the model or the compiler) still
point into the user's own file.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import SpecError
from conveyor.spec.expressions import value_text
from conveyor.spec.yamlsource import Loc, SourceMap, describe

_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class Translation:
    """Native data being built, with the positions of the foreign keys it came from."""

    path: str
    out: SourceMap = field(init=False)

    def __post_init__(self) -> None:
        self.out = SourceMap(self.path)

    def mark(self, native: Loc, source: SourceMap, foreign: Loc) -> None:
        position = source.position(foreign)
        if position.line is not None:
            self.out.marks[native] = (position.line, position.column or 1)


def check_keys(
    data: Mapping[str, Any],
    source: SourceMap,
    loc: Loc,
    known: Collection[str],
    refused: Mapping[str, str],
    what: str,
) -> None:
    """Refuse keys Conveyor does not support (by name, with why) and unknown keys."""
    for key in data:
        if key in known:
            continue
        where = describe((*loc, key)) if loc else key
        if key in refused:
            raise source.error((*loc, key), f"{where}: {refused[key]}")
        message = f"unknown key {key!r} in {describe(loc) or 'the top level'} ({what})"
        close = difflib.get_close_matches(key, [*known], n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        raise source.error((*loc, key), message)


def expect_mapping(value: Any, source: SourceMap, loc: Loc, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise source.error(loc, f"{describe(loc) or 'the document'} must be a mapping ({what})")
    return value


def expect_list(value: Any, source: SourceMap, loc: Loc, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise source.error(loc, f"{describe(loc)} must be a list ({what})")
    return value


def expect_text(value: Any, source: SourceMap, loc: Loc) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise source.error(loc, f"{describe(loc)} must be a non-empty string")
    return str(value)


def slug(name: str, fallback: str) -> str:
    """A name usable as a job or step id (letters, digits, ``-`` and ``_``)."""
    text = _SLUG.sub("-", name.strip().lower()).strip("-")[:60]
    return text if text and text[0] not in "-" else fallback


def env_value(value: Any) -> str:
    """A setting as an environment variable: scalars as text, lists of scalars joined
    with commas, anything nested as compact JSON (the Drone plugin convention)."""
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return value_text(value)
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return ",".join(value_text(v) for v in value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def refuse(source: SourceMap, loc: Loc, message: str) -> SpecError:
    return source.error(loc, message)
