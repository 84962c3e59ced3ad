"""Secret values never reach a viewer: each common encoding of a secret is replaced by
``***`` in logs (stored and streamed) and in output files committed to git or downloaded.

The forms: the value itself in any ASCII case mix (and its Unicode upper and lower case),
hex, URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``), JSON-escaped,
and base64/base64url at each of the three byte alignments: a value that starts 0, 1 or 2
bytes into a 3-byte group encodes to different text, so each alignment contributes the
part of its encoding that depends on the value alone, whatever bytes surround it.

Matching ignores line breaks, so a form broken over lines (``fold -w 5``, base64 wrapped
at 76 columns) is found too; each piece is masked on its own line. What masking cannot
see is listed in docs/server.md.
"""

from __future__ import annotations

import base64
import bisect
import codecs
import json
import os
import re
from collections.abc import Generator, Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 6
"""Shorter values cannot be masked without hiding ordinary text: the API refuses them."""
MIN_FORM = 4
"""Encoded forms shorter than this are not masked (noise); the value itself from 3 bytes."""
MAX_HELD = 64 * 1024
"""The most a stream holds back (a secret's start followed by that many line breaks)."""
_MASK = MASK.encode()
_KEY = 4
_TEXT = re.compile(rb"[^\r\n]+")
_RUN = re.compile(rb"\x01+")
_BREAKS = b"\r\n"
_CHUNK = 1024 * 1024


def forms(value: str) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The forms of ``value`` to hide: (matched in any ASCII case, lower-cased; matched
    exactly). Empty for values shorter than 3 bytes."""
    raw = value.encode()
    if len(raw) < 3:
        return frozenset(), frozenset()
    caseless = {
        raw.hex().encode(),
        quote(value, safe="").encode(),
        quote(value).encode(),
        quote_plus(value).encode(),
        json.dumps(value)[1:-1].encode(),
        json.dumps(value, ensure_ascii=False)[1:-1].encode(),
    }
    exact = set()
    for shift in range(3):  # the value's first byte at each offset in a base64 group
        start = -(-8 * shift // 6)  # the first character no prefix byte reaches
        end = 8 * (shift + len(raw)) // 6  # the last one no following byte reaches
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            exact.add(encode(bytes(shift) + raw)[start:end])
    itself = {_unbroken(f) for f in (raw, value.lower().encode(), value.upper().encode())}
    caseless = {f for f in map(_unbroken, caseless) if len(f) >= MIN_FORM} | itself
    return (
        frozenset(f.lower() for f in caseless if len(f) >= 3),
        frozenset(f for f in exact if len(f) >= MIN_FORM),
    )


def _unbroken(form: bytes) -> bytes:
    """Matching skips line breaks, so a multi-line value (a PEM key) is matched without them."""
    return form.replace(b"\r", b"").replace(b"\n", b"")


def _alternation(items: Iterable[bytes]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]] | None:
    """A quick search for any form, and a lookahead that finds every occurrence (overlapping
    ones included), the longest form at each position."""
    ordered = sorted(set(items), key=len, reverse=True)
    if not ordered:
        return None
    either = b"|".join(re.escape(f) for f in ordered)
    return re.compile(either), re.compile(b"(?=(" + either + b"))")


class Masker:
    """Finds and hides the forms of a set of secret values; pure and reusable."""

    def __init__(self, values: Iterable[str]) -> None:
        caseless: set[bytes] = set()
        exact: set[bytes] = set()
        for value in values:
            more_caseless, more_exact = forms(value)
            caseless |= more_caseless
            exact |= more_exact
        self._caseless = _alternation(caseless)
        self._exact = _alternation(exact)
        self.longest = max(map(len, caseless | exact), default=0)
        self._starts = (_Starts(caseless), _Starts(exact))

    def __bool__(self) -> bool:
        return self.longest > 0

    def stream(self) -> MaskStream:
        return MaskStream(self)

    def mask(self, data: bytes) -> bytes:
        stream = self.stream()
        return stream.feed(data) + stream.close()

    def contains(self, data: bytes) -> bool:
        stream = self.stream()
        stream.feed(data)
        stream.close()
        return stream.found

    def _mark(self, data: bytes, marks: bytearray) -> int:
        """Set ``marks`` (one per byte of ``data``) where a form lies; return where the
        tail that may still grow into a form starts (``len(data)`` when none may)."""
        joined = data.replace(b"\r", b"").replace(b"\n", b"")
        lowered = joined.lower()
        spans = []
        for patterns, text in ((self._caseless, lowered), (self._exact, joined)):
            if patterns is not None and patterns[0].search(text):
                spans += [(m.start(), m.start() + len(m[1])) for m in patterns[1].finditer(text)]
        if spans:
            _mark_spans(data, spans, marks)
        window = self.longest - 1
        size = max(self._starts[0].held(lowered, window), self._starts[1].held(joined, window))
        if size:
            position = len(data)
            while size:  # back over ``size`` characters that are not line breaks
                position -= 1
                size -= data[position] not in _BREAKS
            # a tail padded with endless blank lines is let go (memory stays bounded)
            return position if len(data) - position <= MAX_HELD else len(data)
        return len(data)


class _Starts:
    """Finds the end of a text that may be the start of a form: forms by their first
    ``_KEY`` bytes, and the shorter starts as they are (linear in the forms' length:
    a PEM key's forms are kilobytes long)."""

    def __init__(self, forms: Iterable[bytes]) -> None:
        self.by_key: dict[bytes, list[bytes]] = {}
        self.short: set[bytes] = set()
        for form in forms:
            self.by_key.setdefault(form[:_KEY], []).append(form)
            self.short.update(form[:size] for size in range(1, min(_KEY, len(form))))
        keys = [re.escape(k) for k in self.by_key if len(k) == _KEY]
        self.keys = re.compile(b"(?=(" + b"|".join(keys) + b"))") if keys else None

    def held(self, text: bytes, window: int) -> int:
        """The length of the longest end of ``text``, under ``window`` bytes, that is a
        proper start of a form (0: none)."""
        end = len(text)
        if self.keys is not None:
            for match in self.keys.finditer(text, max(0, end - window)):
                size = end - match.start()
                if any(len(f) > size and text.endswith(f[:size]) for f in self.by_key[match[1]]):
                    return size
        for size in range(min(_KEY - 1, window, end), 0, -1):
            if text[end - size :] in self.short:
                return size
        return 0


def _mark_spans(data: bytes, spans: list[tuple[int, int]], marks: bytearray) -> None:
    """Mark the bytes of ``data`` that the spans of its line-break-free copy cover."""
    runs = [(m.start(), m.end()) for m in _TEXT.finditer(data)]
    starts = []  # where each run starts in the copy
    offset = 0
    for a, b in runs:
        starts.append(offset)
        offset += b - a
    for begin, end in spans:
        index = bisect.bisect_right(starts, begin) - 1
        while begin < end:
            a, b = runs[index]
            here = a + begin - starts[index]
            upto = min(b, here + end - begin)
            marks[here:upto] = b"\x01" * (upto - here)
            begin += upto - here
            index += 1


class MaskStream:
    """Masks data that arrives in chunks (a log being written): the tail that could be
    the start of a form is held back until the next chunk says whether it is one, so a
    secret written in two halves is still caught."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self.found = False
        self._pending = b""
        self._marks = bytearray()
        self._in_mask = False  # the last byte given out was part of a masked run

    def feed(self, chunk: bytes) -> bytes:
        if not self.masker:
            return chunk
        data = self._pending + chunk
        marks = self._marks + bytearray(len(chunk))
        keep = self.masker._mark(data, marks)
        self._pending, self._marks = data[keep:], marks[keep:]
        return self._render(data[:keep], marks[:keep])

    def close(self) -> bytes:
        data, marks = self._pending, self._marks
        self._pending, self._marks = b"", bytearray()
        return self._render(data, marks)

    def _render(self, data: bytes, marks: bytearray) -> bytes:
        if not data:
            return b""
        out = bytearray()
        done = 0
        for run in _RUN.finditer(marks):
            self.found = True
            out += data[done : run.start()]
            if not (run.start() == 0 and self._in_mask):
                out += _MASK
            done = run.end()
        out += data[done:]
        self._in_mask = marks[-1] == 1
        return bytes(out)


def mask(text: str, values: Iterable[str]) -> str:
    return Masker(values).mask(text.encode()).decode("utf-8", errors="replace")


def scan_file(path: Path, masker: Masker) -> tuple[bool, bool]:
    """Whether the file holds a form of a secret, and whether it is text (UTF-8, no NUL):
    text can be masked, a binary file would be corrupted by it."""
    stream = masker.stream()
    decoder = codecs.getincrementaldecoder("utf-8")()
    text = True
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            stream.feed(chunk)
            if text:
                try:
                    decoder.decode(chunk)
                    text = b"\0" not in chunk
                except UnicodeDecodeError:
                    text = False
    stream.close()
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        text = False
    return stream.found, text


def masked_chunks(path: Path, masker: Masker) -> Generator[bytes, None, None]:
    """The content of a file with every form of the secrets masked, chunk by chunk."""
    stream = masker.stream()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield stream.feed(chunk)
    yield stream.close()


def mask_file(path: Path, masker: Masker) -> None:
    """Rewrite a log file in place (atomically) with every form of the secrets masked."""
    if not masker or not path.is_file():
        return
    if not scan_file(path, masker)[0]:
        return
    tmp = path.with_suffix(".masking")
    with open(tmp, "wb") as target:
        for chunk in masked_chunks(path, masker):
            target.write(chunk)
    os.replace(tmp, path)
