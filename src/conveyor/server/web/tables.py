"""An executor table as the settings page edits it: TOML lines, as in the
``[executors.NAME]`` table of ``.conveyor/config.toml``, read with ``tomllib`` (data,
never code) and written back from the stored settings for the form."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

from conveyor.errors import UsageError

MAX_CHARS = 8000
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def read_table(name: str, text: str) -> dict[str, Any] | None:
    """The table typed in the form; None when it is empty (the table is removed)."""
    if len(text) > MAX_CHARS:
        raise UsageError(f"the {name} table is longer than {MAX_CHARS} characters")
    if not text.strip():
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"the {name} table is not TOML ({exc})") from None


def toml_text(table: Mapping[str, Any]) -> str:
    """``key = value`` lines; nested tables as dotted keys (``conf."spark.x" = "1"``)."""
    return "".join(f"{key} = {value}\n" for key, value in _lines((), table))


def _lines(prefix: tuple[str, ...], table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in table.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            yield from _lines(path, value)
        else:
            yield ".".join(k if _BARE.fullmatch(k) else json.dumps(k) for k in path), _value(value)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's too
