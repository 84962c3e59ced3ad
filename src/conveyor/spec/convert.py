"""A loaded pipeline (any format) written back as the equivalent ``conveyor.yml``.

The text loads and compiles to the same plan as the file it came from (the tests hold
that round trip). Only values that differ from the defaults are written.
"""

from __future__ import annotations

from typing import Any

import yaml

from conveyor.spec.model import PipelineSpec


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; several-line strings as literal blocks."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def _fetched_action(step: dict[str, Any]) -> dict[str, Any]:
    """A step whose action was fetched from git as a ``uses`` step that names the
    repository again (not the clone in this checkout's cache, which a fresh clone lacks)."""
    action = step.get("action") or {}
    if not action.get("uses"):
        return step
    out = {k: v for k, v in step.items() if k not in ("run", "image", "action")}
    native = {"uses": action["uses"], "with": action.get("inputs", {})}
    if action.get("rules"):
        native["action-format"] = action["rules"]
    if action.get("file"):
        native["action-file"] = action["file"]
    head: dict[str, Any] = {k: out.pop(k) for k in ("id", "name") if k in out}
    return {**head, **native, **out}


def to_native_yaml(spec: PipelineSpec, origin: str) -> str:
    """The native text of ``spec``; ``origin`` names the file it was loaded from."""
    data: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data = {"name": spec.name, **data}
    for job in data.get("jobs", {}).values():
        job["steps"] = [_fetched_action(step) for step in job.get("steps", [])]
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    header = (
        f"# Converted from {origin} ({spec.format} format) by `conveyor convert`.\n"
        "# Conveyor runs either file the same way; this one can also declare inputs and\n"
        "# outputs, which makes steps cacheable (see docs/pipeline-format.md).\n"
    )
    return header + body
