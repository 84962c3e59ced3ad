"""Drone's volumes: a pipeline's ``temp`` volumes, mounted by its steps at a path.

A temporary volume is a directory of the run shared by the pipeline's steps that name
it, mounted at their ``path`` in the step's container (native step ``volumes``). Host
volumes are refused: a pipeline file must not reach into the machine that runs it.
"""

from __future__ import annotations

from typing import Any

from conveyor.spec.translate import expect_list, expect_mapping, expect_text
from conveyor.spec.yamlsource import Loc, SourceMap

__all__ = ["pipeline_volumes", "step_volumes"]


def pipeline_volumes(value: Any, source: SourceMap, loc: Loc) -> set[str]:
    """The names of the pipeline's temporary volumes."""
    names: set[str] = set()
    for i, item in enumerate(expect_list(value, source, loc, "volumes")):
        volume = expect_mapping(item, source, (*loc, i), "a volume with name and temp")
        name = expect_text(volume.get("name"), source, (*loc, i, "name"))
        if "host" in volume:
            raise source.error(
                (*loc, i, "host"),
                f"volume {name!r}: host volumes are not supported (a pipeline file may not "
                "mount the machine's directories); use `temp: {}`",
            )
        if set(volume) != {"name", "temp"}:
            raise source.error((*loc, i), f"volume {name!r} needs `temp: {{}}` (and a name)")
        names.add(name)
    return names


def step_volumes(
    value: Any, source: SourceMap, loc: Loc, declared: set[str]
) -> list[dict[str, str]]:
    mounts = []
    for i, item in enumerate(expect_list(value, source, loc, "volumes")):
        mount = expect_mapping(item, source, (*loc, i), "a volume's name and path")
        name = expect_text(mount.get("name"), source, (*loc, i, "name"))
        path = expect_text(mount.get("path"), source, (*loc, i, "path"))
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise source.error(
                (*loc, i, "name"),
                f"volume {name!r} is not a temp volume of the pipeline (its volumes: {known})",
            )
        mounts.append({"name": name, "path": path})
    return mounts
