"""Native action manifests (``action.yml``): typed inputs, outputs, and how the action
runs (a shell command, a Python script with its own requirements, or a container image).

Parsing and type checks are pure; where an action lives and how its Python environment
is built are the caller's business (see :mod:`conveyor.spec.uses`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conveyor.spec.translate import check_keys, expect_mapping
from conveyor.spec.yamlsource import SourceMap

MANIFEST_NAMES = ("action.yml", "action.yaml")
INPUT_TYPES = ("string", "number", "boolean", "json", "array", "file")


@dataclass(frozen=True)
class InputDecl:
    type: str = "string"
    required: bool = False
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class Runs:
    """One of: ``command`` alone; ``python`` (+ ``requirements``); ``image`` (+ ``command``)."""

    command: str | None = None
    python: str | None = None
    requirements: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class ActionManifest:
    name: str
    description: str | None
    inputs: dict[str, InputDecl]
    outputs: tuple[str, ...]
    runs: Runs


def parse_manifest(data: Any, source: SourceMap) -> ActionManifest:
    manifest = expect_mapping(data, source, (), "an action manifest with `name` and `runs`")
    check_keys(
        manifest,
        source,
        (),
        {"name", "description", "inputs", "outputs", "runs", "author"},
        {},
        "an action manifest",
    )
    if not manifest.get("name"):
        raise source.error((), "an action manifest needs a `name`")
    inputs: dict[str, InputDecl] = {}
    declared_inputs = manifest.get("inputs") or {}
    for key, raw in expect_mapping(declared_inputs, source, ("inputs",), "name -> input").items():
        loc = ("inputs", key)
        declared = expect_mapping(raw or {}, source, loc, "type, required, default, description")
        check_keys(
            declared, source, loc, {"type", "required", "default", "description"}, {}, "an input"
        )
        kind = str(declared.get("type", "string"))
        if kind not in INPUT_TYPES:
            raise source.error(
                (*loc, "type"),
                f"unknown input type {kind!r} (known: {', '.join(INPUT_TYPES)})",
            )
        default = declared.get("default")
        if default is not None:
            try:
                default = check_value(kind, default)
            except ValueError as exc:
                raise source.error((*loc, "default"), f"default of input {key!r}: {exc}") from None
        required = declared.get("required", False)
        if not isinstance(required, bool):
            raise source.error((*loc, "required"), "`required` is true or false")
        description = declared.get("description")
        inputs[str(key)] = InputDecl(
            kind, required, default, None if description is None else str(description)
        )
    outputs = expect_mapping(manifest.get("outputs") or {}, source, ("outputs",), "name -> output")
    for key, raw in outputs.items():
        check_keys(
            expect_mapping(raw or {}, source, ("outputs", key), "description"),
            source,
            ("outputs", key),
            {"description"},
            {},
            "an output",
        )
    description = manifest.get("description")
    return ActionManifest(
        str(manifest["name"]),
        None if description is None else str(description),
        inputs,
        tuple(str(k) for k in outputs),
        _runs(manifest.get("runs"), source),
    )


def _runs(data: Any, source: SourceMap) -> Runs:
    runs = expect_mapping(data, source, ("runs",), "command, python or image")
    check_keys(runs, source, ("runs",), {"command", "python", "requirements", "image"}, {}, "runs")
    for key, value in runs.items():
        if not isinstance(value, str) or not value.strip():
            raise source.error(("runs", key), f"runs.{key} is a non-empty string")
    kinds = [k for k in ("python", "image") if k in runs]
    if len(kinds) > 1:
        raise source.error(("runs",), "runs has one of python and image, not both")
    if "python" in runs:
        if "command" in runs:
            raise source.error(("runs", "command"), "a python action has no `command`")
    elif "requirements" in runs:
        raise source.error(("runs", "requirements"), "`requirements` is for python actions")
    elif "command" not in runs and "image" not in runs:
        raise source.error(("runs",), "runs needs `command`, `python` or `image`")
    return Runs(
        command=runs.get("command"),
        python=runs.get("python"),
        requirements=runs.get("requirements"),
        image=runs.get("image"),
    )


def check_value(kind: str, value: Any) -> Any:
    """``value`` as an input of type ``kind``; ``ValueError`` says why it is not one.

    No silent casts from text: ``"3"`` is not a number. A ``json`` input that is a
    string is parsed as JSON; a ``file`` is a project-relative path."""
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"a string is expected, and {value!r} is not one")
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise ValueError(f"a number is expected, and {value!r} is not one")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"true or false is expected, and {value!r} is neither")
    if kind == "array":
        if isinstance(value, list):
            return value
        raise ValueError(f"a list is expected, and {value!r} is not one")
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError(f"{value!r} is not JSON") from None
        return value
    if kind == "file":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a project path is expected, and {value!r} is not one")
        path = value.strip()
        if path.startswith(("/", "../")) or path == "..":
            raise ValueError(f"{value!r} is outside the project; a file input is a project path")
        return path
    raise ValueError(f"unknown input type {kind!r}")
