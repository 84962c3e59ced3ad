"""Reading step logs in constant memory: the tail reader, line prefixes, --since."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import UsageError
from conveyor.sdk.logs import decoded, parse_since, prefixed, tail_start

LINES = st.text(alphabet="ab é\n", max_size=300)


class _Counting(io.BytesIO):
    """A file that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


@settings(max_examples=300, deadline=None)
@given(text=LINES, lines=st.integers(0, 12), block=st.integers(1, 40))
def test_the_tail_starts_where_the_last_lines_start(text: str, lines: int, block: int) -> None:
    data = text.encode()
    start = tail_start(io.BytesIO(data), lines, block)
    expected = text.splitlines(keepends=True)[-lines:] if lines else []
    assert data[start:].decode() == "".join(expected)


def test_the_tail_reads_backwards_not_the_whole_file() -> None:
    handle = _Counting(b"0123456789" * 100_000 + b"\nlast line\n")
    start = tail_start(handle, 1, block=64 * 1024)
    assert handle.getvalue()[start:] == b"last line\n"
    assert handle.taken <= 64 * 1024


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab\r\n\x0b\x85\u2028é", max_size=200),
    size=st.integers(1, 9),
)
def test_prefixed_lines_match_the_whole_text_split_into_lines(text: str, size: int) -> None:
    """Streaming keeps what printing the whole log line by line gave."""
    chunks = _chunks(text.encode(), size)
    streamed = b"".join(prefixed(decoded(chunks), "s │ ")).decode()
    assert streamed == "".join(f"s │ {line}\n" for line in text.splitlines())


def test_decoding_replaces_bad_bytes_as_reading_the_whole_file_did() -> None:
    data = "é€ ok".encode() + b"\xff\xfe tail"
    assert "".join(decoded(_chunks(data, 1))) == data.decode("utf-8", errors="replace")


NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", NOW - 600),
        ("90s", NOW - 90),
        ("2h", NOW - 7200),
        ("1d", NOW - 86400),
        ("2026-12-02T14:30:00+00:00", NOW - 1800),
        ("2026-12-02T14:30:00Z", NOW - 1800),
    ],
)
def test_since_takes_a_duration_or_an_iso_time(value: str, expected: float) -> None:
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["garbage", "", "-5m", "10 parsecs", "1e400d", "x" * 5000])
def test_since_refuses_anything_else_in_one_sentence(value: str) -> None:
    with pytest.raises(UsageError, match=r"is neither a duration") as caught:
        parse_since(value, NOW)
    assert len(str(caught.value)) < 200 and "\n" not in str(caught.value)
