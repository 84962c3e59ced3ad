"""The executor tables a project's lead sets (``executors`` in its settings), checked as
a run will read them before they are stored: a bad table is refused at once, in one
sentence, instead of failing every later run of the project."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from conveyor.errors import UsageError

MAX_TABLES = 16
MAX_KEYS = 64
"""Settings in one table (nested tables count theirs)."""
MAX_TEXT = 2000
MAX_DEPTH = 3
"""A table in a table in a table: ``[executors.spark.conf]`` with dotted Spark names."""


def _parsers() -> dict[str, Callable[[Mapping[str, Any]], object]]:
    """The built-in executors' own readers of their table (no engine is contacted)."""
    from conveyor.executors.dask.settings import DaskSettings
    from conveyor.executors.htcondor.settings import HTCondorSettings
    from conveyor.executors.spark.settings import SparkSettings

    return {
        "htcondor": HTCondorSettings.from_mapping,
        "spark": SparkSettings.parse,
        "dask": DaskSettings.parse,
    }


def check_tables(tables: Mapping[str, Any]) -> None:
    """Raise a ``ConveyorError`` naming the first bad setting: a value that is not text,
    a number, true/false or a table; too many or too long; a key the executor does not
    know or a value it refuses."""
    if len(tables) > MAX_TABLES:
        raise UsageError(f"at most {MAX_TABLES} executor tables")
    parsers = _parsers()
    for name, table in tables.items():
        where = f"executors.{name}"
        if not isinstance(table, Mapping):
            raise UsageError(f"{where} must be a table of settings")
        if _count(where, table, 1) > MAX_KEYS:
            raise UsageError(f"{where} has more than {MAX_KEYS} settings")
        parse = parsers.get(name)
        if parse is not None:
            parse(table)  # its ProjectError says which key and why


def _count(where: str, table: Mapping[str, Any], depth: int) -> int:
    count = 0
    for key, value in table.items():
        path = f"{where}.{key}"
        if not isinstance(key, str) or not key or len(key) > 200:
            raise UsageError(f"{where} has a setting name that is empty or too long")
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                raise UsageError(f"{path} nests tables too deep (at most {MAX_DEPTH} levels)")
            count += _count(path, value, depth + 1)
            continue
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise UsageError(f"{path} is longer than {MAX_TEXT} characters")
        elif isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{path} is {value}; a number must be finite")
        elif not isinstance(value, bool | int | float):
            if value is None:
                raise UsageError(f"{path} is null; leave it out for the executor's default")
            kind = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
            raise UsageError(f"{path} is {kind}; a setting is text, a number or true/false")
        count += 1
    return count
