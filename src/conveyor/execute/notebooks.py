"""What keys a notebook step's notebook: its code cells' sources, in order, and nothing
else. Outputs, execution counts and metadata change every time a person runs the
notebook in Jupyter; keying on them would make every save a cache miss."""

from __future__ import annotations

import json
from pathlib import Path

import blake3

MAX_NOTEBOOK_BYTES = 64 << 20
"""A larger notebook is keyed by its bytes (it is read by papermill anyway)."""


def code_cells_digest(path: Path) -> str | None:
    """``cells:<digest>`` of the notebook's code cells, or None when the file is not a
    notebook this can read (too large, not JSON, no cell list): then its bytes key it."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        return None
    sources = [
        _text(cell.get("source", ""))
        for cell in cells
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]
    blob = json.dumps(sources, separators=(",", ":")).encode()
    return "cells:" + blake3.blake3(blob).hexdigest()


def _text(source: object) -> str:
    """nbformat keeps a cell's source as one string or a list of lines."""
    if isinstance(source, list):
        return "".join(str(line) for line in source)
    return str(source)
