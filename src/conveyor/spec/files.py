"""Where a project's pipeline file is (kept apart from the loader: no YAML or pydantic)."""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import ProjectError

PIPELINE_FILES = ("conveyor.yml", "conveyor.yaml", ".dotscience.yml", ".drone.yml")
"""Looked for in this order; a DataTorch file is given with ``-f`` (or found by shape)."""
PYTHON_PIPELINE = "pipeline.py"
"""A pipeline written in Python, looked for last. Kept out of :data:`PIPELINE_FILES`:
a server reads those in its own process, and runs a pushed ``pipeline.py`` only in the
sandbox of its steps (``server/triggers.py``)."""

_FORMAT_BY_NAME = {
    "conveyor.yml": "conveyor",
    "conveyor.yaml": "conveyor",
    ".dotscience.yml": "dotscience",
    ".dotscience.yaml": "dotscience",
    ".drone.yml": "drone",
    ".drone.yaml": "drone",
}


def format_for_name(name: str) -> str | None:
    """The format a file name implies, or None: detect it from the content."""
    return _FORMAT_BY_NAME.get(name)


def find_pipeline_file(root: Path) -> Path:
    """The pipeline file of the project rooted at ``root``."""
    for name in (*PIPELINE_FILES, PYTHON_PIPELINE):
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise ProjectError(
        f"no pipeline file in {root} (looked for {', '.join(PIPELINE_FILES)}, {PYTHON_PIPELINE}); "
        "run `conveyor init` to write an example, or name one with -f"
    )
