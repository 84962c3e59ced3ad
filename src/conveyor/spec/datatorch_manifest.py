"""DataTorch action manifests (``action-datatorch.yaml``) -> the action model
(:mod:`conveyor.spec.actions`): typed inputs, outputs, and how the action runs
(``runs.using``: python, cmd/commandline, shell/script, docker).

DataTorch's type names map onto the model's types; its casts (``"3"`` is a number) are
the translator's choice when it checks a value (``check_value(..., casts=True)``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from conveyor.spec.actions import ActionManifest, InputDecl, Runs
from conveyor.spec.translate import check_keys, expect_mapping
from conveyor.spec.yamlsource import SourceMap

REQUIREMENTS = "requirements.txt"
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
_ENTRY = {
    "python": "main",
    "cmd": "command",
    "commandline": "command",
    "shell": "script",
    "script": "script",
    "docker": "image",
}
"""``runs.using`` -> the key that says what runs (DataTorch's ``RunnerFactory``)."""
_REFUSED = {
    "node": "DataTorch 0.8.0 cannot run it either (its node runner has no implementation)",
    "human": "a human task is completed by a person on the DataTorch server",
}


def with_requirements(manifest: ActionManifest, directory: Path) -> ActionManifest:
    """A python action that ships a ``requirements.txt`` runs in an environment of its own
    with them installed (DataTorch 0.8.0's python runner; one per requirements digest)."""
    runs = manifest.runs
    if runs.python is None or not (directory / REQUIREMENTS).is_file():
        return manifest
    return replace(manifest, runs=replace(runs, requirements=REQUIREMENTS))


def declared_types(data: Any) -> dict[str, str]:
    """Each input's ``type`` as the manifest names it (DataTorch casts by these names)."""
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(inputs, dict):
        return {}
    return {
        str(key): str(declared["type"])
        for key, declared in inputs.items()
        if isinstance(declared, dict) and declared.get("type")
    }


def manifest_cache(data: Any) -> bool:
    """The manifest's ``cache``: whether its steps are cached unless a step says."""
    return isinstance(data, dict) and bool(data.get("cache", False))


def read_manifest(data: Any, source: SourceMap, ref: str) -> ActionManifest:
    """The manifest as the model; a default is checked when it is used, as DataTorch does."""
    manifest = expect_mapping(data, source, (), "an action manifest")
    check_keys(
        manifest,
        source,
        (),
        {
            "$schema",
            "name",
            "description",
            "inputs",
            "outputs",
            "runs",
            "author",
            "branding",
            "cache",
            "env",
        },
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
        kind = declared.get("type")  # a name DataTorch does not cast by leaves it as it is
        description = declared.get("description")
        inputs[str(key)] = InputDecl(
            TYPES.get(str(kind), "any"),
            bool(declared.get("required")),
            declared.get("default"),
            None if description is None else str(description),
        )
    outputs = expect_mapping(manifest.get("outputs", {}), source, ("outputs",), "")
    runs = expect_mapping(
        manifest.get("runs"), source, ("runs",), "using: python, cmd, shell, script or docker"
    )
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
    where = ("runs", "using") if "using" in runs else ("runs",)
    if using in _REFUSED:
        raise source.error(where, f"runs.using: {using} is not run here: {_REFUSED[using]}")
    if using not in _ENTRY:
        raise source.error(where, f"runs.using: {using!r} is not supported ({', '.join(_ENTRY)})")
    key = _ENTRY[str(using)]
    check_keys(runs, source, ("runs",), {"using", key}, {}, f"runs for {using}")
    entry = runs.get(key)
    if not isinstance(entry, str) or not entry.strip():
        raise source.error(("runs",), f"runs.{key} is required for `using: {using}`")
    if key == "command":
        return Runs(command=entry)
    if key == "image":  # DataTorch runs the image as it is: no command, no inputs
        return Runs(image=entry.strip())
    path = entry.strip().strip("/")
    if using == "python":
        return Runs(python=path)
    # `script: run.sh --flag`: the path, then the author's arguments (DataTorch's split)
    script, _, arguments = path.partition(" ")
    return Runs(script=script, arguments=arguments.strip() or None)
