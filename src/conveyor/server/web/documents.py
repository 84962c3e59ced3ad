"""Previews that need an optional library: a Parquet file's first rows (pyarrow) and a
notebook rendered as HTML (nbconvert, sanitised; the page shows it only in a sandboxed
frame). Without the library the page says which package to install.

Both read a run's file as data, bounded: a Parquet file's schema and first row group
only when that group is small, a notebook only when its JSON is small enough to
parse whole."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from conveyor.server.masking import Masker
from conveyor.server.web.files import read_head
from conveyor.server.web.preview import CELL, COLUMNS, ROWS, Table

NOTEBOOK_LIMIT = 8 << 20  # bytes of a notebook's JSON rendered
ROW_GROUP_LIMIT = 64 << 20  # bytes of a Parquet row group read for its first rows
NO_PYARROW = "Install pyarrow to see Parquet files as tables: pip install pyarrow"
NO_NBCONVERT = "Install nbconvert to see notebooks rendered: pip install nbconvert"


class MissingLibrary(Exception):
    """The library a preview needs is not installed (its message says which)."""


def parquet_table(path: Path) -> Table:
    """The columns and first ``ROWS`` rows of a Parquet file (the first ``COLUMNS``
    columns, each cell cut to ``CELL`` characters); a table with an error for a file
    pyarrow cannot read or a first row group too big to read for a preview."""
    try:
        import pyarrow.parquet as pq
        from pyarrow import ArrowException
    except ImportError:
        raise MissingLibrary(NO_PYARROW) from None
    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        names = parquet.schema_arrow.names
        shown = names[:COLUMNS]
        if meta.num_row_groups and meta.row_group(0).total_byte_size > ROW_GROUP_LIMIT:
            return Table(shown, [], True, _too_big(meta.num_rows, meta.row_group(0)))
        batch = next(parquet.iter_batches(batch_size=ROWS, columns=shown), None)
    except (ArrowException, OSError, ValueError) as exc:
        return Table([], [], False, f"pyarrow cannot read this file as Parquet: {exc}"[:500])
    rows = batch.to_pylist() if batch is not None else []
    cells = [[_cell(row.get(name)) for name in shown] for row in rows]
    more = meta.num_rows > len(cells) or len(names) > len(shown)
    return Table(shown, cells, more)


def _too_big(rows: int, group: object) -> str:
    size = getattr(group, "total_byte_size", 0)
    return f"{rows} rows; its first row group is {size} bytes, too big to read for a preview"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL else text[:CELL] + "…"


def notebook_html(data: bytes) -> str:
    """A notebook as a sanitised HTML document (nbconvert's basic template: no scripts,
    raw HTML in cells and outputs escaped or cleaned by nbconvert's sanitiser)."""
    try:
        import nbformat
        from nbconvert import HTMLExporter
    except ImportError:
        raise MissingLibrary(NO_NBCONVERT) from None
    try:
        notebook = nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        nbformat.ValidationError,
    ) as exc:
        raise ValueError(f"this is not a notebook nbformat can read: {exc}"[:500]) from None
    exporter = HTMLExporter(template_name="basic", sanitize_html=True)
    body, _resources = exporter.from_notebook_node(notebook)
    head = '<!doctype html><html><head><meta charset="utf-8"></head>'
    return f"{head}<body>{body}</body></html>"


def parquet_preview(stored: Path, masker: Masker) -> dict[str, Any]:
    """The preview page's body for a Parquet output: its table, or why there is none
    (a file holding a secret of the project is not read at all)."""
    head = read_head(stored, masker, 0)
    if head.withheld or head.masked:
        return {"note": "This file holds a secret of the project: it is not shown."}
    try:
        return {"table": parquet_table(stored)}
    except MissingLibrary as exc:
        return {"note": str(exc)}


def notebook_document(stored: Path, masker: Masker) -> str:
    """What the sandboxed frame of a notebook's preview shows: the notebook rendered
    (secrets masked), or one sentence saying why not."""
    head = read_head(stored, masker, NOTEBOOK_LIMIT)
    if head.withheld:
        return _sentence("This file holds a secret of the project: it is not shown.")
    if head.truncated:
        return _sentence(f"This notebook is over {NOTEBOOK_LIMIT >> 20} MiB: download it.")
    try:
        return notebook_html(head.data)
    except (MissingLibrary, ValueError) as exc:
        return _sentence(str(exc))


def _sentence(text: str) -> str:
    head = '<!doctype html><html><head><meta charset="utf-8"></head>'
    return f"{head}<body><p>{escape(text)}</p></body></html>"
