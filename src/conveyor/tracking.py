"""``conveyor.log_metric``, ``log_param``, ``log_artifact``: tracking from a step's code.

Stdlib only and cheap to import. Inside a run, each call appends one JSON line to the
step's tracking log (``$CONVEYOR_PROJECT_DIR/$CONVEYOR_TRACKING/log.jsonl``), which the
runner stores with the step's outputs on every executor; ``conveyor metrics show`` reads
it back. Outside a run the calls do nothing, with one warning.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from conveyor.domain.tracking import ARTIFACTS, LOG_NAME, TRACKING_ENV
from conveyor.errors import UsageError

MAX_NAME = 200
MAX_TEXT = 10_000
MAX_LOG_BYTES = 16 << 20
"""A step's tracking log stops growing here (a call past it raises)."""


class TrackingError(UsageError, ValueError):
    """A value the tracking calls cannot record (the caller's mistake)."""


def log_metric(name: str, value: float) -> None:
    """Record a metric of this step, e.g. ``conveyor.log_metric("auc", 0.91)``; the last
    value of a name wins. Outside a run: nothing, with one warning."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TrackingError(f"metric {name!r} must be a finite number, not {value!r}")
    _append({"kind": "metric", "name": _name(name), "value": value})


def log_param(name: str, value: str | int | float | bool | None) -> None:
    """Record a parameter this step used, e.g. ``conveyor.log_param("depth", 5)``."""
    if value is not None and not isinstance(value, str | int | float | bool):
        raise TrackingError(f"parameter {name!r} must be text, a number or a boolean")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise TrackingError(f"parameter {name!r} is longer than {MAX_TEXT} characters")
    _append({"kind": "param", "name": _name(name), "value": value})


def log_artifact(path: str | os.PathLike[str]) -> None:
    """Keep a copy of a file the step wrote with the step's outputs (under its tracking
    directory's ``artifacts/``, by its file name), e.g. ``log_artifact("plot.png")``."""
    source = Path(path)
    if not source.is_file():
        raise TrackingError(f"{source} is not a file")
    where = _directory()
    if where is None:
        return
    target = where / ARTIFACTS / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    _append({"kind": "artifact", "name": source.name, "path": str(source)})


def _name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\n" in name:
        raise TrackingError(f"a tracked name is text of 1 to {MAX_NAME} characters: {name!r}")
    return name


def _directory() -> Path | None:
    relative = os.environ.get(TRACKING_ENV)
    if not relative:
        _warn_once()
        return None
    return Path(os.environ.get("CONVEYOR_PROJECT_DIR", ".")) / relative


@functools.cache
def _warn_once() -> None:
    warnings.warn(
        "conveyor.log_* outside a Conveyor run records nothing (no CONVEYOR_TRACKING)",
        RuntimeWarning,
        stacklevel=5,
    )


def _append(entry: dict[str, Any]) -> None:
    where = _directory()
    if where is None:
        return
    where.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, allow_nan=False) + "\n"
    log = where / LOG_NAME
    size = log.stat().st_size if log.exists() else 0
    if size + len(line) > MAX_LOG_BYTES:
        raise TrackingError(f"the step's tracking log would pass {MAX_LOG_BYTES >> 20} MiB")
    with open(log, "a", encoding="utf-8") as out:
        out.write(line)
