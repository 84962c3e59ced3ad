"""JSON -> plain data plus a map of where every value was written, like ``yamlsource``.

A JSON file may hold several documents one after another (a JSON stream, as
``pachctl create pipeline -f`` reads it). The stdlib parser gives no positions, so this
is a small recursive-descent reader over the same grammar: strings through the stdlib's
own ``scanstring`` (escapes exactly as ``json`` reads them), numbers by JSON's number
syntax. Duplicate keys are errors, and the limits of ``yamlsource`` hold: at most
:data:`~conveyor.spec.yamlsource.MAX_DOCUMENT_BYTES` of text, :data:`MAX_VALUES` values
and :data:`MAX_DEPTH` levels, checked while reading (linear in the text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec.yamlsource import MAX_DEPTH, MAX_VALUES, Loc, SourceMap, check_size

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_SPACE = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONSTANTS = {"true": True, "false": False, "null": None}


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.at = 0
        self.values = 0
        # line starts, to turn an offset into line:column
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> Position:
        import bisect

        line = bisect.bisect_right(self.lines, offset)
        return Position(self.path, line, offset - self.lines[line - 1] + 1)

    def error(self, message: str, offset: int | None = None) -> SpecError:
        return SpecError(message, self.position(self.at if offset is None else offset))

    def skip(self) -> None:
        self.at = _SPACE.match(self.text, self.at).end()  # type: ignore[union-attr]

    def value(self, loc: Loc, source: SourceMap, depth: int, mark: int | None = None) -> Any:
        self.skip()
        start = self.at
        where = self.position(start if mark is None else mark)
        source.marks[loc] = (where.line or 1, where.column or 1)
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.error(f"more than {MAX_VALUES} values in one document")
        if depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels")
        if start >= len(self.text):
            raise self.error("invalid JSON: a value is missing at the end of the file")
        ch = self.text[start]
        if ch == "{":
            return self.mapping(loc, source, depth)
        if ch == "[":
            return self.sequence(loc, source, depth)
        if ch == '"':
            return self.string()
        number = _NUMBER.match(self.text, start)
        if number and number.end() > start:
            self.at = number.end()
            try:
                if number.group(1) or number.group(2):
                    return float(number.group(0))
                return int(number.group(0))
            except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
                raise self.error("a number with too many digits", start) from None
        for word, constant in _CONSTANTS.items():
            if self.text.startswith(word, start):
                self.at = start + len(word)
                return constant
        raise self.error(f"invalid JSON: unexpected {self.text[start]!r}")

    def string(self) -> str:
        try:
            text, self.at = json.decoder.scanstring(self.text, self.at + 1)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            raise self.error(f"invalid JSON: {exc.msg}", exc.pos) from None
        if _SURROGATE.search(text):
            raise self.error("invalid JSON: a string holds a lone UTF-16 surrogate (\\ud800...)")
        return str(text)

    def expect(self, ch: str, what: str) -> None:
        self.skip()
        if not self.text.startswith(ch, self.at):
            found = repr(self.text[self.at]) if self.at < len(self.text) else "the end of the file"
            raise self.error(f"invalid JSON: expected {what}, found {found}")
        self.at += 1

    def mapping(self, loc: Loc, source: SourceMap, depth: int) -> dict[str, Any]:
        self.at += 1
        result: dict[str, Any] = {}
        self.skip()
        if self.text.startswith("}", self.at):
            self.at += 1
            return result
        while True:
            self.skip()
            key_at = self.at
            if not self.text.startswith('"', key_at):
                raise self.error("invalid JSON: expected a key in double quotes")
            key = self.string()
            if key in result:
                raise self.error(f"duplicate key {key!r}", key_at)
            self.expect(":", "':' after a key")
            result[key] = self.value((*loc, key), source, depth + 1, key_at)
            self.skip()
            if self.text.startswith(",", self.at):
                self.at += 1
                continue
            self.expect("}", "',' or '}'")
            return result

    def sequence(self, loc: Loc, source: SourceMap, depth: int) -> list[Any]:
        self.at += 1
        result: list[Any] = []
        self.skip()
        if self.text.startswith("]", self.at):
            self.at += 1
            return result
        while True:
            result.append(self.value((*loc, len(result)), source, depth + 1))
            self.skip()
            if self.text.startswith(",", self.at):
                self.at += 1
                continue
            self.expect("]", "',' or ']'")
            return result


def load_documents(text: str, path: str) -> Iterator[tuple[Any, SourceMap]]:
    """Yield ``(data, source_map)`` for every JSON document of the stream ``text``."""
    if len(text) > 1024:
        check_size(len(text.encode()), path)
    reader = _Reader(text, path)
    reader.skip()
    while reader.at < len(text):
        source = SourceMap(path)
        reader.values = 0
        data = reader.value((), source, 1)
        yield data, source
        reader.skip()
