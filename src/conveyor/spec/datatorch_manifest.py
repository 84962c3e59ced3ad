"""DataTorch action manifests (``action-datatorch.yaml``): typed inputs, outputs, and
the command that runs the action (``runs.using``: python, cmd or shell)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.spec.translate import check_keys, expect_mapping
from conveyor.spec.yamlsource import SourceMap

if TYPE_CHECKING:
    from conveyor.spec.datatorch import ActionRef, ResolvedAction

MANIFESTS = ("action-datatorch.yaml", "action-datatorch.yml")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "int": (int,),
    "float": (int, float),
    "number": (int, float),
    "boolean": (bool,),
    "bool": (bool,),
    "array": (list,),
    "list": (list,),
    "object": (dict,),
    "dict": (dict,),
}


@dataclass
class Manifest:
    ref: str
    directory: Path
    commit: str | None
    inputs: dict[str, dict[str, Any]]
    outputs: list[str]
    command: str


def cast(kind: str, value: Any) -> Any:
    expected = _TYPES[kind]
    if expected == (str,) and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bool) != (expected == (bool,)) and not isinstance(value, str):
        raise TypeError(kind)
    if isinstance(value, expected):
        return value
    if expected == (int,):
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    if expected == (int, float):
        return float(value)
    if expected == (str,) and isinstance(value, int | float):
        return str(value)
    if expected == (bool,) and str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise TypeError(kind)


def read_manifest(
    document: tuple[Any, SourceMap],
    ref: ActionRef,
    resolved: ResolvedAction,
    relative: Callable[[Path], str | None],
) -> Manifest:
    data, source = document
    manifest = expect_mapping(data, source, (), "an action manifest")
    check_keys(
        manifest,
        source,
        (),
        {"$schema", "name", "description", "inputs", "outputs", "runs", "author", "branding"},
        {},
        "an action manifest",
    )
    inputs: dict[str, dict[str, Any]] = {}
    for key, declared in expect_mapping(
        manifest.get("inputs", {}), source, ("inputs",), ""
    ).items():
        declared = expect_mapping(declared, source, ("inputs", key), "type, required, default")
        check_keys(
            declared,
            source,
            ("inputs", key),
            {"type", "required", "default", "description"},
            {},
            "an input",
        )
        if declared.get("type") is not None and str(declared["type"]) not in _TYPES:
            raise source.error(
                ("inputs", key, "type"),
                f"unknown input type {declared['type']!r} (known: {', '.join(sorted(_TYPES))})",
            )
        inputs[str(key)] = declared
    outputs = [
        str(k) for k in expect_mapping(manifest.get("outputs", {}), source, ("outputs",), "")
    ]
    runs = expect_mapping(manifest.get("runs"), source, ("runs",), "using: python, cmd or shell")
    return Manifest(
        str(ref),
        resolved.directory,
        resolved.commit,
        inputs,
        outputs,
        _command(runs, source, resolved.directory, relative),
    )


def _command(
    runs: dict[str, Any], source: SourceMap, directory: Path, relative: Callable[[Path], str | None]
) -> str:
    using = runs.get("using")
    keys = {"python": "main", "cmd": "command", "shell": "script"}
    if using not in keys:
        raise source.error(
            ("runs", "using") if "using" in runs else ("runs",),
            f"runs.using: {using!r} is not supported (python, cmd, shell)",
        )
    check_keys(runs, source, ("runs",), {"using", keys[str(using)]}, {}, f"runs for {using}")
    entry = runs.get(keys[str(using)])
    if not isinstance(entry, str) or not entry.strip():
        raise source.error(("runs",), f"runs.{keys[str(using)]} is required for `using: {using}`")
    if using == "cmd":
        return entry  # the action author's command; inputs arrive as INPUT_* variables
    path = directory / entry.strip().strip("/")
    shown = shlex.quote(relative(path) or str(path))
    if using == "python":
        return f'python3 -B {shown} "$CONVEYOR_ACTION_INPUTS"'  # -B: no .pyc in the key
    runner = "" if os.access(path, os.X_OK) else "sh "
    return f'{runner}{shown} "$CONVEYOR_ACTION_INPUTS"'
