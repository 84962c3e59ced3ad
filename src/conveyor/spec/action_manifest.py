"""Native action manifests (``action.yml``) -> the action model
(:mod:`conveyor.spec.actions`): typed inputs (checked, never cast from text), outputs,
and how the action runs (a shell command, a Python script with its own requirements, or
a container image).

Parsing is pure; where an action lives and how its Python environment is built are the
caller's business (see :mod:`conveyor.spec.uses`).
"""

from __future__ import annotations

from typing import Any

from conveyor.spec.actions import ActionManifest, InputDecl, Runs, check_value
from conveyor.spec.translate import check_keys, expect_mapping
from conveyor.spec.yamlsource import SourceMap

MANIFEST_NAMES = ("action.yml", "action.yaml")
INPUT_TYPES = ("string", "number", "boolean", "json", "array", "file")


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
