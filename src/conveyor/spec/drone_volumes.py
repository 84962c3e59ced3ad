"""Drone's volumes: a pipeline's ``temp`` and ``host`` volumes, mounted by its steps.

A temporary volume is a directory of the run shared by the pipeline's steps that name
it, mounted at their ``path`` in the step's container (native step ``volumes``). A host
volume is a directory of the machine (native ``host``): the file may name one, but a
step mounts it only where the project's settings allow that directory
(``execute/hostvolumes.py``, checked at launch).
"""

from __future__ import annotations

from typing import Any

from conveyor.spec.translate import expect_list, expect_mapping, expect_text
from conveyor.spec.yamlsource import Loc, SourceMap

__all__ = ["pipeline_volumes", "step_volumes"]


def pipeline_volumes(value: Any, source: SourceMap, loc: Loc) -> dict[str, str | None]:
    """The pipeline's volumes by name: the host path of a host volume, None for temp."""
    names: dict[str, str | None] = {}
    for i, item in enumerate(expect_list(value, source, loc, "volumes")):
        volume = expect_mapping(item, source, (*loc, i), "a volume with name and temp or host")
        name = expect_text(volume.get("name"), source, (*loc, i, "name"))
        if name in names:
            raise source.error((*loc, i, "name"), f"two volumes are named {name!r}")
        if set(volume) == {"name", "temp"}:
            names[name] = None
        elif set(volume) == {"name", "host"}:
            host = expect_mapping(volume["host"], source, (*loc, i, "host"), "{path: /dir}")
            path = expect_text(host.get("path"), source, (*loc, i, "host", "path"))
            if set(host) != {"path"} or not path.startswith("/"):
                raise source.error(
                    (*loc, i, "host"), f"volume {name!r}: host needs an absolute `path`"
                )
            names[name] = path
        else:
            raise source.error(
                (*loc, i), f"volume {name!r} needs `temp: {{}}` or `host: {{path}}` (and a name)"
            )
    return names


def step_volumes(
    value: Any, source: SourceMap, loc: Loc, declared: dict[str, str | None]
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
                f"volume {name!r} is not a volume of the pipeline (its volumes: {known})",
            )
        host = declared[name]
        mounts.append({"name": name, "path": path, **({"host": host} if host else {})})
    return mounts
