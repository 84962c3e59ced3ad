"""Plain-text tables for the terminal: values as a person reads them, columns aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click


def cell_text(value: Any) -> str:
    """A value as a table cell: ``-`` for none, ``true``/``false``, six significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def echo_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    """The header and lines, each column as wide as its widest cell."""
    rows = [header, *lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
