"""JSON values that carry the text they were encoded as, so a record is not encoded twice.

A cache hit's records row repeats what the run already encoded: its fingerprint's parts
(the canonical text the key digests) and its cache entry's outputs (the text read from the
records). A repository that stores JSON columns as text writes ``text`` as it is; any other
reader sees a plain dict or list. Neither is changed after it is made (nothing edits a
record's parts or outputs in place: they are replaced whole).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class TextDict(dict[str, Any]):
    """A JSON object and its text."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text


class TextList(list[Any]):
    """A JSON array (of values that encode as themselves or by ``to_json``) and its text."""

    __slots__ = ("text",)

    def __init__(self, value: Iterable[Any], text: str) -> None:
        super().__init__(value)
        self.text = text


class TextTuple(tuple[Any, ...]):
    """A JSON array as a tuple (a cache entry's outputs) and its text."""

    text: str

    def __new__(cls, value: Iterable[Any], text: str) -> TextTuple:
        made = super().__new__(cls, value)
        made.text = text
        return made


_CARRIERS = (TextDict, TextList, TextTuple)


def json_text(value: object) -> str | None:
    """The text ``value`` carries, if it is one of these."""
    return value.text if type(value) in _CARRIERS else None  # type: ignore[attr-defined]
