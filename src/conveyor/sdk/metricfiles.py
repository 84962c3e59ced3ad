"""Metrics files and tracking logs as flat ``{key: value}`` maps, the way DVC reads them.

JSON and YAML: nested mappings become dotted keys (``train.loss``), lists indexed
(``scores.0``); CSV and TSV: the last row, one key per column, numbers as numbers. A
tracking log (``log.jsonl``): the last value of each metric and parameter, and the
artifacts it kept. Pure: the caller reads the bytes, bounded by :data:`MAX_BYTES`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 16 << 20
"""Metrics files and tracking logs larger than this are refused, never read whole."""
MAX_DEPTH = 32
MAX_KEYS = 10_000

Scalar = str | int | float | bool | None
FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv"}


class MetricsFileError(ValueError):
    """Why a metrics file cannot be read (the caller names the file and the step)."""


def metrics_format(path: str) -> str:
    """``json``, ``yaml``, ``csv`` or ``tsv`` by the file's suffix (JSON otherwise)."""
    dot = path.rfind(".")
    return FORMATS.get(path[dot:].lower(), "json") if dot >= 0 else "json"


def parse_metrics(path: str, data: bytes) -> dict[str, Scalar]:
    """The flat metrics of one file; raises MetricsFileError with the reason."""
    kind = metrics_format(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetricsFileError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if kind in ("csv", "tsv"):
        return _last_row(text, "\t" if kind == "tsv" else ",")
    value = _json(text) if kind == "json" else _yaml(text)
    if not isinstance(value, dict):
        raise MetricsFileError(f"holds a {type(value).__name__}, not a mapping of metrics")
    return flatten(value)


def flatten(value: dict[str, Any]) -> dict[str, Scalar]:
    """Nested mappings and lists -> dotted keys of scalars (``a.b``, ``a.0``)."""
    flat: dict[str, Scalar] = {}
    for key, leaf in _leaves(value, "", 0):
        if len(flat) >= MAX_KEYS:
            raise MetricsFileError(f"holds more than {MAX_KEYS} values")
        flat[key] = leaf
    return flat


def _leaves(value: Any, prefix: str, depth: int) -> Iterator[tuple[str, Scalar]]:
    if depth > MAX_DEPTH:
        raise MetricsFileError(f"nests deeper than {MAX_DEPTH} levels")
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        name = f"{prefix}{key}"
        if isinstance(item, dict | list):
            yield from _leaves(item, f"{name}.", depth + 1)
        elif item is None or isinstance(item, str | int | float | bool):
            yield name, item
        else:  # YAML dates and the like: as text
            yield name, str(item)


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise MetricsFileError(f"is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise MetricsFileError("nests too deeply") from exc


def _no_constant(name: str) -> float:
    raise MetricsFileError(f"is not JSON: {name} is not a JSON number")


def _yaml(text: str) -> Any:
    import yaml  # only for YAML metrics files

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MetricsFileError(f"is not YAML: {getattr(exc, 'problem', exc)}{where}") from exc
    except RecursionError as exc:
        raise MetricsFileError("nests too deeply") from exc


def _last_row(text: str, delimiter: str) -> dict[str, Scalar]:
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise MetricsFileError(f"is not a table: {exc}") from exc
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise MetricsFileError("needs a header row and at least one row of values")
    header, last = rows[0], rows[-1]
    if len(last) != len(header):
        raise MetricsFileError(f"its last row has {len(last)} values for {len(header)} columns")
    return {name: number(cell) for name, cell in zip(header, last, strict=True)}


def number(cell: str) -> Scalar:
    """A table cell as a number when it reads as one (finite), else as text."""
    for kind in (int, float):
        try:
            value = kind(cell)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return cell
        return value
    return cell


@dataclass
class TrackingLog:
    """What a step recorded with ``conveyor.log_*`` (the last value of each name)."""

    metrics: dict[str, Scalar] = field(default_factory=dict)
    params: dict[str, Scalar] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


def parse_tracking(data: bytes) -> TrackingLog:
    """A tracking log's lines; a line that is not one of ours is an error."""
    log = TrackingLog()
    for number_, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            kind, name = entry["kind"], str(entry["name"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MetricsFileError(f"line {number_} is not a tracking entry") from exc
        if kind == "metric":
            log.metrics[name] = _scalar(entry.get("value"))
        elif kind == "param":
            log.params[name] = _scalar(entry.get("value"))
        elif kind == "artifact" and name not in log.artifacts:
            log.artifacts.append(name)
    return log


def _scalar(value: Any) -> Scalar:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
