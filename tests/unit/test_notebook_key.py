"""What keys a notebook step: its code cells' sources, not outputs, counts or metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.execute.notebooks import code_cells_digest


def _notebook(path: Path, code: list[str], **extra: Any) -> Path:
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "source": src, "metadata": {}, "outputs": [], "execution_count": None}
        for src in code
    ]
    cells.insert(1, {"cell_type": "markdown", "source": extra.get("markdown", "# notes")})
    for cell, count in zip(cells, extra.get("counts", []), strict=False):
        cell["execution_count"] = count
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"{count}\n"}]
    document = {"cells": cells, "metadata": extra.get("metadata", {}), "nbformat": 4}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_outputs_counts_markdown_and_metadata_leave_the_key_alone(tmp_path: Path) -> None:
    code = ["a = 1", "print(a)"]
    plain = code_cells_digest(_notebook(tmp_path / "a.ipynb", code))
    run = code_cells_digest(
        _notebook(
            tmp_path / "b.ipynb",
            code,
            counts=[3, 4, 5],
            markdown="# other notes",
            metadata={"kernelspec": {"name": "python3"}},
        )
    )
    assert plain is not None and plain.startswith("cells:")
    assert plain == run


def test_a_code_change_or_a_new_order_changes_the_key(tmp_path: Path) -> None:
    base = code_cells_digest(_notebook(tmp_path / "a.ipynb", ["a = 1", "print(a)"]))
    edited = code_cells_digest(_notebook(tmp_path / "b.ipynb", ["a = 2", "print(a)"]))
    swapped = code_cells_digest(_notebook(tmp_path / "c.ipynb", ["print(a)", "a = 1"]))
    split = code_cells_digest(_notebook(tmp_path / "d.ipynb", ["a = 1print(a)"]))
    assert len({base, edited, swapped, split}) == 4


def test_a_source_as_lines_is_the_same_as_one_string(tmp_path: Path) -> None:
    lines = tmp_path / "lines.ipynb"
    lines.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"]}]}))
    text = tmp_path / "text.ipynb"
    text.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "a = 1\nb = 2"}]}))
    assert code_cells_digest(lines) == code_cells_digest(text)


def test_a_file_that_is_no_notebook_is_keyed_by_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text("not json")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "nocells.ipynb").write_text('{"cells": 3}')
    for name in ("bad", "list", "nocells", "missing"):
        assert code_cells_digest(tmp_path / f"{name}.ipynb") is None
