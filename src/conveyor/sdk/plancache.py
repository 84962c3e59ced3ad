"""Compiled plans cached by the pipeline file's name and bytes, the command-line
arguments, and the digests of any other file the loader read (action manifests). A
plan with actions from git is loaded again on every run, so that a moved tag is noticed.

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from conveyor import __version__
from conveyor.domain.conditions import TriggerContext, pipeline_values
from conveyor.domain.types import ParamValue
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.listing import ProjectFiles
from conveyor.sdk.project import Project
from conveyor.spec.files import format_for_name

if TYPE_CHECKING:
    from conveyor.spec.model import PipelineSpec

_KEEP = 20  # entries; older ones are pruned when a new one is written
# Raised when the compiler gives another plan for the same file (2: one glob dialect, so
# `*` in an input no longer orders a step after a writer of a deeper path)
COMPILER = 2


def run_trigger(
    project: Project, payload: Mapping[str, Any] | None = None, project_id: str = ""
) -> TriggerContext:
    """``${{ event.* }}`` and ``${{ pipeline.* }}`` of a run of ``project``: the trigger's
    payload, the pipeline file and the project (a server's name, else the directory's)."""
    pipeline = os.path.relpath(project.pipeline_file, project.root)
    return TriggerContext(
        dict(payload or {}), pipeline_values(pipeline, project_id or project.root.name)
    )


def compile_cached(
    project: Project,
    params: Mapping[str, ParamValue],
    only: Sequence[str],
    store: bool = True,
    trigger: TriggerContext | None = None,
) -> tuple[ExecutionPlan, list[str]]:
    """The plan, and the loader's warnings (kept with the cached plan). ``store=False``
    (``conveyor plan``) reads a cached plan but writes none: no state from a look.
    ``trigger``: what ``event.*`` and ``pipeline.*`` read (default: no payload)."""
    trigger = trigger or run_trigger(project)
    path = project.pipeline_file
    # the settings say where actions are found: a change there may change the plan
    config = project.state_dir / "config.toml"
    settings = config.read_bytes() if config.is_file() else b""
    key = _key(path.name, path.read_bytes() + b"\0" + settings, params, only, trigger)
    directory = project.state_dir / "cache" / "plans"
    entry = directory / f"{key}.json"
    files = ProjectFiles(project.root)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        data = json.loads(entry.read_text(encoding="utf-8"))
        plan = ExecutionPlan.from_json(data["plan"])
        # actions from git are checked against their remote on every run (a moved tag)
        pinned = any(step.action_commit for step in plan.steps)
        if (
            not pinned
            and _unchanged(data["read_files"])
            and files.unchanged(data.get("listings", {}))
        ):
            return plan, list(data["warnings"])
        files = ProjectFiles(project.root)  # datums changed: compile again
    from conveyor.plan.compile import compile_plan

    spec = _load(project)
    plan = compile_plan(spec, params, only, files, trigger)
    if store:
        read_files = {p: _digest(Path(p)) for p in spec.read_files}
        _write(directory, entry, plan, read_files, list(spec.warnings), files.seen)
    return plan, list(spec.warnings)


def _load(project: Project) -> PipelineSpec:
    """The pipeline file's spec: a native file read without pydantic when the plain
    reader is sure of it, else (and for every error) by the model's loader."""
    path = project.pipeline_file
    if format_for_name(path.name) != "conveyor":
        return project.load_spec()
    from conveyor.spec.plainspec import parse_file, plain_spec

    parsed = parse_file(path, project.display_path(path))
    spec = plain_spec(parsed) if parsed is not None else None
    return spec if spec is not None else project.load_spec(parsed)


def _key(
    name: str,
    content: bytes,
    params: Mapping[str, ParamValue],
    only: Sequence[str],
    trigger: TriggerContext,
) -> str:
    # the name chooses the format (.drone.yml and conveyor.yml load the same bytes apart)
    hasher = blake3.blake3(content)
    extra = [__version__, COMPILER, sys.version, name, sorted(params.items()), list(only)]
    extra.append(trigger.key())
    hasher.update(json.dumps(extra).encode())
    return str(hasher.hexdigest()[:32])


def _digest(path: Path) -> str | None:
    try:
        return str(blake3.blake3(path.read_bytes()).hexdigest())
    except OSError:
        return None


def _unchanged(read_files: dict[str, str | None]) -> bool:
    """Files the loader read besides the pipeline file (action manifests) still match."""
    return all(_digest(Path(p)) == digest for p, digest in read_files.items())


def _write(
    directory: Path,
    entry: Path,
    plan: ExecutionPlan,
    read_files: dict[str, str | None],
    warnings: list[str],
    listings: object,
) -> None:
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        data = {
            "plan": plan.to_json(),
            "read_files": read_files,
            "warnings": warnings,
            "listings": listings,
        }
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(entry)
        entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-_KEEP]:
            old.unlink(missing_ok=True)
