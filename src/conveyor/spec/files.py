"""Where a project's pipeline file is (kept apart from the loader: no YAML or pydantic)."""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import ProjectError

PIPELINE_FILES = ("conveyor.yml", "conveyor.yaml")


def find_pipeline_file(root: Path) -> Path:
    """The pipeline file of the project rooted at ``root``."""
    for name in PIPELINE_FILES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise ProjectError(
        f"no pipeline file in {root} (looked for {', '.join(PIPELINE_FILES)}); "
        "run `conveyor init` to write an example"
    )
