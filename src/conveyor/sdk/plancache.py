"""Compiled plans cached by the pipeline file's bytes and the command-line arguments.

An unchanged pipeline file is neither parsed nor validated again: the compiled plan is
read back from JSON, once the files its ``datums`` matched are found to be the same.
This keeps YAML and pydantic off the start-up path of the common "run again" case. A
cache entry is only ever written after a successful compile, so a broken pipeline file
always reaches the loader and its precise error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import blake3

from conveyor import __version__
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.listing import ProjectFiles
from conveyor.sdk.project import Project

_KEEP = 20  # entries; older ones are pruned when a new one is written


def compile_cached(project: Project, params: Sequence[str], only: Sequence[str]) -> ExecutionPlan:
    path = project.pipeline_file
    key = _key(path.read_bytes(), params, only)
    directory = project.state_dir / "cache" / "plans"
    entry = directory / f"{key}.json"
    files = ProjectFiles(project.root)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        data = json.loads(entry.read_text(encoding="utf-8"))
        if files.unchanged(data.get("listings", {})):
            return ExecutionPlan.from_json(data)
        files = ProjectFiles(project.root)  # datums changed: compile again
    from conveyor.plan.compile import compile_plan, parse_params

    spec = project.load_spec()
    plan = compile_plan(spec, parse_params(spec, params), only, files)
    _write(directory, entry, {**plan.to_json(), "listings": files.seen})
    return plan


def _key(content: bytes, params: Sequence[str], only: Sequence[str]) -> str:
    hasher = blake3.blake3(content)
    extra = json.dumps([__version__, sys.version, list(params), list(only)])
    hasher.update(extra.encode())
    return str(hasher.hexdigest()[:32])


def _write(directory: Path, entry: Path, data: dict[str, object]) -> None:
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(entry)
        entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-_KEEP]:
            old.unlink(missing_ok=True)
