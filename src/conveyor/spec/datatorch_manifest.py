"""DataTorch action manifests (``action-datatorch.yaml``) -> the action model
(:mod:`conveyor.spec.actions`): typed inputs, outputs, and how the action runs
(``runs.using``: python, cmd or shell).

DataTorch's type names map onto the model's types; its casts (``"3"`` is a number) are
the translator's choice when it checks a value (``check_value(..., casts=True)``).
"""

from __future__ import annotations

from typing import Any

from conveyor.spec.actions import ActionManifest, InputDecl, Runs
from conveyor.spec.translate import check_keys, expect_mapping
from conveyor.spec.yamlsource import SourceMap

MANIFESTS = ("action-datatorch.yaml", "action-datatorch.yml")
TYPES = {
    "string": "string",
    "integer": "integer",
    "int": "integer",
    "float": "number",
    "number": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
}
"""DataTorch's type names -> the model's."""
_ENTRY = {"python": "main", "cmd": "command", "shell": "script"}


def read_manifest(data: Any, source: SourceMap, ref: str) -> ActionManifest:
    """The manifest as the model; a default is checked when it is used, as DataTorch does."""
    manifest = expect_mapping(data, source, (), "an action manifest")
    check_keys(
        manifest,
        source,
        (),
        {"$schema", "name", "description", "inputs", "outputs", "runs", "author", "branding"},
        {},
        "an action manifest",
    )
    inputs: dict[str, InputDecl] = {}
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
        kind = declared.get("type")
        if kind is not None and str(kind) not in TYPES:
            raise source.error(
                ("inputs", key, "type"),
                f"unknown input type {kind!r} (known: {', '.join(sorted(TYPES))})",
            )
        description = declared.get("description")
        inputs[str(key)] = InputDecl(
            "any" if kind is None else TYPES[str(kind)],
            bool(declared.get("required")),
            declared.get("default"),
            None if description is None else str(description),
        )
    outputs = expect_mapping(manifest.get("outputs", {}), source, ("outputs",), "")
    runs = expect_mapping(manifest.get("runs"), source, ("runs",), "using: python, cmd or shell")
    description = manifest.get("description")
    return ActionManifest(
        str(manifest.get("name") or ref),
        None if description is None else str(description),
        inputs,
        tuple(str(k) for k in outputs),
        _runs(runs, source),
    )


def _runs(runs: dict[str, Any], source: SourceMap) -> Runs:
    using = runs.get("using")
    if using not in _ENTRY:
        raise source.error(
            ("runs", "using") if "using" in runs else ("runs",),
            f"runs.using: {using!r} is not supported (python, cmd, shell)",
        )
    key = _ENTRY[str(using)]
    check_keys(runs, source, ("runs",), {"using", key}, {}, f"runs for {using}")
    entry = runs.get(key)
    if not isinstance(entry, str) or not entry.strip():
        raise source.error(("runs",), f"runs.{key} is required for `using: {using}`")
    if using == "cmd":
        return Runs(command=entry)
    path = entry.strip().strip("/")
    return Runs(python=path) if using == "python" else Runs(script=path)
