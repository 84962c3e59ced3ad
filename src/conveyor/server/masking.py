"""Secret values never show in logs: replaced by ``***`` when stored and when streamed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MASK = "***"


def mask(text: str, values: Iterable[str]) -> str:
    for value in sorted((v for v in values if len(v) >= 3), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def mask_file(path: Path, values: Iterable[str]) -> None:
    """Rewrite a log file in place (atomically) with secret values masked."""
    wanted = [v for v in values if len(v) >= 3]
    if not wanted or not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    masked = mask(text, wanted)
    if masked != text:
        tmp = path.with_suffix(".masking")
        tmp.write_text(masked, encoding="utf-8")
        tmp.replace(path)
