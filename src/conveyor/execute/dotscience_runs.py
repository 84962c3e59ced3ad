"""Dotscience runs a step published: the ``[[DOTSCIENCE-RUN:ID]]{json}[[/DOTSCIENCE-RUN:ID]]``
blocks that the ``dotscience`` library's ``ds.publish()`` prints in script and notebook
mode, captured from the step's log into its tracking directory.

A Dotscience user's script runs unchanged: after a step succeeds and before its outputs
are stored, the runner reads its log for the blocks and writes what they say
(parameters, summary metrics, inputs, outputs, labels, description, error) to
``dotscience.json`` beside the ``conveyor.log_*`` lines; the tracking directory is then
stored like any output, so ``conveyor metrics show`` and ``params diff`` read it back
from the store (cache hits too). Bounded: a log is searched up to MAX_LOG_BYTES, at most
MAX_RUNS blocks of MAX_BLOCK_BYTES each are kept; anything else in a block is dropped.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from pathlib import Path
from typing import Any

RUNS_NAME = "dotscience.json"
MAX_LOG_BYTES = 1 << 30
MAX_RUNS = 1000
MAX_BLOCK_BYTES = 1 << 20
MAX_MARKERS = 2 * MAX_RUNS
"""Start markers looked at (each costs a search of up to MAX_BLOCK_BYTES for its end)."""
_MARK = b"[[DOTSCIENCE-RUN:"
_ID = re.compile(rb"([0-9A-Za-z-]{1,64})\]\]")
_LISTS = ("input", "output")
_MAPS = ("parameters", "summary", "labels")
_TEXTS = ("description", "error", "start", "end", "workload-file")


def published_runs(log_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The runs the log's blocks describe, in the order printed (none: ``[]``)."""
    try:
        if os.stat(log_path).st_size == 0:  # most logs of quick steps: one call, no open
            return []
        with open(log_path, "rb") as log:
            size = os.fstat(log.fileno()).st_size
            if size == 0:
                return []
            with mmap.mmap(log.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _blocks(data, min(size, MAX_LOG_BYTES))
    except OSError:
        return []


def _blocks(data: mmap.mmap, end: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    start = data.find(_MARK, 0, end)
    for _ in range(MAX_MARKERS):
        if start < 0 or len(runs) >= MAX_RUNS:
            break
        after = start + len(_MARK)
        named = _ID.match(data, after, min(after + 66, end))
        if named is None:
            start = data.find(_MARK, after, end)
            continue
        body = named.end()
        closing = b"[[/DOTSCIENCE-RUN:" + named.group(1) + b"]]"
        stop = data.find(closing, body, min(body + MAX_BLOCK_BYTES + len(closing), end))
        if stop < 0:
            start = data.find(_MARK, after, end)
            continue
        run = _run(named.group(1).decode(), data[body:stop])
        if run is not None:
            runs.append(run)
        start = data.find(_MARK, stop + len(closing), end)
    return runs


def _run(run_id: str, body: bytes) -> dict[str, Any] | None:
    """A block's JSON kept to Dotscience's fields, each of its type (a block that is
    not a JSON object is not a run: a script may print the markers in other text)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # a log is the step's text: anything may be there
        return None
    if not isinstance(data, dict):
        return None
    run: dict[str, Any] = {"id": run_id}
    for key in _LISTS:
        value = data.get(key)
        if isinstance(value, list):
            run[key] = [str(item) for item in value]
    for key in _MAPS:
        value = data.get(key)
        if isinstance(value, dict):
            run[key] = {str(k): _scalar(v) for k, v in value.items()}
    for key in _TEXTS:
        value = data.get(key)
        if isinstance(value, str):
            run[key] = value
    return run


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def capture(log_path: str | None, tracking_dir: Path) -> bool:
    """Write the log's published runs to ``tracking_dir/dotscience.json``; whether any."""
    if not log_path:
        return False
    runs = published_runs(log_path)
    if not runs:
        return False
    tracking_dir.mkdir(parents=True, exist_ok=True)
    target = tracking_dir / RUNS_NAME
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps({"runs": runs}, sort_keys=True), encoding="utf-8")
    os.replace(temporary, target)
    return True
