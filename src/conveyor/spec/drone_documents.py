"""The documents of a ``.drone.yml`` as Drone reads them, before any pipeline is translated.

Drone 0.8 files (``pipeline:`` at the top) are refused with how to convert them. Of the
1.x documents, ``kind: pipeline`` (in any case: Drone reads a kind it does not know as a
pipeline) is translated; ``signature`` is ignored; ``secret`` is ignored with one warning
(``from_secret: NAME`` reads the project's secret NAME); ``template`` is refused. A
pipeline of a type other than ``docker`` or ``exec`` runs as a docker pipeline; the keys
that cannot have a meaning here are dropped with one warning per pipeline that names them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec.yamlsource import SourceMap

__all__ = ["DRONE_08", "DRONE_TYPES", "drop_ignored", "pipeline_documents", "refuse_drone_08"]

DRONE_TYPES = ("docker", "exec", "kubernetes", "vm", "ssh", "digitalocean", "macstadium", "nomad")
"""Pipeline types Drone's runners know: all but ``exec`` run here as docker pipelines."""

_IGNORED = {
    "node_selector": "no Kubernetes nodes",
    "tolerations": "no Kubernetes nodes",
    "service_account_name": "no Kubernetes",
    "metadata": "no Kubernetes",
    "host_aliases": "no Kubernetes",
    "dns_config": "no Kubernetes",
    "pool": "no VM pools",
    "server": "no SSH or cloud servers",
    "token": "no cloud servers",
    "node": "one runner, no routing labels",
    "image_pull_secrets": "images are pulled with the container runtime's own credentials",
    "workspace": "steps run in the project directory",
    "clone": "Conveyor runs in the git repository itself (nothing is cloned)",
    "when": "Drone ignores a pipeline-level `when` too; `trigger` limits a pipeline",
}
DRONE_08 = (
    "this is a Drone 0.8 file (`pipeline:` at the top); Conveyor reads the 1.x format: "
    "run `drone convert --save .drone.yml` and commit the result"
)
_V08 = re.compile(r"^pipeline:[ \t]*(?:#.*)?$", re.MULTILINE)


def refuse_drone_08(text: str, display: str) -> None:
    """A Drone 0.8 file (``pipeline:`` at the top): refused before YAML is read, because
    0.8 files often repeat keys that Drone's converter tolerates."""
    found = _V08.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise SpecError(DRONE_08, Position(display, line, 1))


def pipeline_documents(
    documents: Sequence[tuple[Any, SourceMap]], warnings: list[str]
) -> list[tuple[Any, SourceMap]]:
    """The pipeline documents (others are ignored, with a warning where it matters)."""
    kept = []
    for data, source in documents:
        kind = data.get("kind") if isinstance(data, dict) else None
        if not isinstance(kind, str) or kind.lower() == "pipeline":
            kept.append((data, source))
        elif kind == "signature":
            continue
        elif kind == "secret":
            name = data.get("name", "?")
            warnings.append(
                f"{source.position(('kind',))}: kind: secret {name!r} is not fetched from an "
                f"external store: `from_secret: {name}` reads the project's secret {name!r}"
            )
        elif kind == "template":
            raise source.error(
                ("kind",), "kind: template is not supported; expand the template into the file"
            )
        else:
            raise source.error(
                ("kind",),
                f"kind: {kind!r} is not supported (pipeline, secret, signature)",
            )
    if not kept:
        raise SpecError(
            "the file holds no `kind: pipeline` document", Position(documents[0][1].path)
        )
    return kept


def drop_ignored(
    doc: dict[str, Any], source: SourceMap, kind_type: str
) -> tuple[dict[str, Any], str | None]:
    """``doc`` without the keys that cannot have a meaning here, and one warning line
    naming them (None when nothing was dropped)."""
    dropped = [key for key in _IGNORED if key in doc]
    kept = {k: v for k, v in doc.items() if k not in _IGNORED}
    if kind_type in ("docker", "exec") and not dropped:
        return kept, None
    name = doc.get("name", "default")
    parts = []
    if kind_type not in ("docker", "exec"):
        parts.append(f"type: {kind_type} runs as a docker pipeline here")
    if dropped:
        why = "; ".join(f"{key} ({_IGNORED[key]})" for key in dropped)
        parts.append(f"ignored: {why}")
    return kept, f"{source.position(('kind',))}: pipeline {name!r}: " + "; ".join(parts)
