"""DataTorch pipelines (placeholder until the loader lands)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec.model import PipelineSpec
from conveyor.spec.yamlsource import SourceMap


def parse_datatorch(
    documents: Sequence[tuple[Any, SourceMap]], display: str, base: Path
) -> PipelineSpec:
    raise SpecError("DataTorch pipelines are not supported yet", Position(display))
