"""What a run's trigger gives its templates: ``${{ event.* }}``, the payload of the
event that started the run (a DataTorch annotator button's file and points, a webhook's
body, `conveyor run --payload FILE.json`), and ``${{ pipeline.* }}``, the pipeline and
the project it runs in. Both are data: looked up field by field, never evaluated.

They are facts of the run's start, not of the commit: fixed before the plan is
compiled, so a value read into an action input joins that step's fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TriggerContext:
    event: Mapping[str, Any] = field(default_factory=dict)
    """The trigger's payload (a JSON object); empty when the run was given none."""
    pipeline: Mapping[str, Any] = field(default_factory=dict)
    """``id``, ``name``, ``projectId`` (see :func:`pipeline_values`)."""

    def names(self) -> dict[str, Mapping[str, Any]]:
        """The template namespaces: always both, so a missing one is explained."""
        return {"event": self.event, "pipeline": self.pipeline}

    def key(self) -> dict[str, Any]:
        """What a cached plan depends on (JSON)."""
        return {"event": dict(self.event), "pipeline": dict(self.pipeline)}


def pipeline_values(pipeline: str, project: str) -> dict[str, str]:
    """``${{ pipeline.* }}``: the pipeline file (its id in a project) and the project
    (DataTorch's ``projectId``; ``project`` too); the plan adds the pipeline's ``name``."""
    return {"id": pipeline, "projectId": project, "project": project}
