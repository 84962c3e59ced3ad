"""Previews that need an optional library: Parquet tables (pyarrow) and notebooks
rendered by nbconvert, sanitised; without the library, a note naming the package."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.server.masking import Masker
from conveyor.server.web import documents, preview


def _parquet(path: Path, rows: int, columns: int = 2) -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = {
        f"c{i}": [f"<b>{i}:{r}</b>" if i == 0 else r for r in range(rows)] for i in range(columns)
    }
    pq.write_table(pa.table(data), path)
    return path


def test_a_parquet_file_is_a_table_of_its_first_rows(tmp_path: Path) -> None:
    table = documents.parquet_table(_parquet(tmp_path / "t.parquet", 250))
    assert table.header == ["c0", "c1"]
    assert len(table.rows) == preview.ROWS and table.more
    assert table.rows[0] == ["<b>0:0</b>", "0"]  # text: the template escapes it


def test_a_wide_parquet_file_shows_its_first_columns(tmp_path: Path) -> None:
    table = documents.parquet_table(_parquet(tmp_path / "w.parquet", 3, preview.COLUMNS + 5))
    assert len(table.header) == preview.COLUMNS and table.more and len(table.rows) == 3


def test_a_file_that_is_not_parquet_says_so(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    table = documents.parquet_table(bad)
    assert table.error and table.error.startswith("pyarrow cannot read this file as Parquet")


def test_a_big_first_row_group_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _parquet(tmp_path / "big.parquet", 1000)
    monkeypatch.setattr(documents, "ROW_GROUP_LIMIT", 10)
    table = documents.parquet_table(path)
    assert table.rows == [] and table.error and "too big" in table.error


def _without(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = builtins.__import__

    def guarded(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".", maxsplit=1)[0] in names:
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded)


def test_without_pyarrow_the_page_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"x")
    _without(monkeypatch, "pyarrow")
    assert documents.parquet_preview(path, Masker(())) == {"note": documents.NO_PYARROW}


def test_a_parquet_file_holding_a_secret_is_not_read(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    secret = "s3cret-in-a-cell-4711"
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"token": [secret]}), path, compression="none")
    body = documents.parquet_preview(path, Masker([secret]))
    assert "table" not in body and "secret" in body["note"]
    assert "table" in documents.parquet_preview(path, Masker(["another-value-0815"]))


def _notebook(cells: list[dict[str, Any]]) -> bytes:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    return nbformat.writes(notebook).encode()


def test_a_notebook_is_rendered_without_its_scripts() -> None:
    nbformat = pytest.importorskip("nbformat")
    code = nbformat.v4.new_code_cell("print('hello')")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<b>bold</b><script>alert(1)</script>"}
        ),
        nbformat.v4.new_output("stream", text="out <img src=x onerror=alert(2)>"),
    ]
    markdown = nbformat.v4.new_markdown_cell("# Title\n<script>alert(3)</script>")
    html = documents.notebook_html(_notebook([markdown, code]))
    assert "hello" in html and "Title" in html
    assert "<script" not in html.lower() and "<img src=x" not in html


@pytest.mark.parametrize(
    "data", [b"not json", b"[1]", b"{}", json.dumps({"nbformat": 99}).encode(), b"[" * 100_000]
)
def test_a_file_that_is_not_a_notebook_is_one_sentence(data: bytes) -> None:
    pytest.importorskip("nbconvert")
    with pytest.raises(ValueError, match="not a notebook"):
        documents.notebook_html(data)


def test_without_nbconvert_the_frame_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(b"{}")
    _without(monkeypatch, "nbconvert", "nbformat")
    page = documents.notebook_document(path, Masker(()))
    assert "pip install nbconvert" in page and "<script" not in page


def test_a_notebook_too_big_is_not_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(b" " * 100)
    monkeypatch.setattr(documents, "NOTEBOOK_LIMIT", 10)
    assert "download it" in documents.notebook_document(path, Masker(()))


def test_the_kinds_and_the_sandboxed_type() -> None:
    assert preview.kind_of("out/t.parquet") == "parquet" == preview.kind_of("t.pq")
    assert preview.kind_of("analysis.ipynb") == "notebook"
    assert preview.raw_type("analysis.ipynb") == preview.HTML
    assert preview.raw_type("t.parquet") is None
