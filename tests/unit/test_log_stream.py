"""The server's log stream: chunks of bounded size, masked across chunk boundaries and
at the cut of ``?tail=N``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.server.logstream import LOG_CHUNK, LogReader
from conveyor.server.masking import MASK, Masker

SECRET = "SECRETVALUE-42"


def _read(path: Path, masker: Masker, tail: int | None = None, chunk: int = LOG_CHUNK) -> str:
    out = []
    with open(path, "rb") as handle:
        reader = LogReader(handle, masker, tail, chunk)
        while True:
            text, more = reader.read()
            out.append(text)
            if not more:
                break
        out.append(reader.finish())
    return "".join(out)


def test_the_chunk_is_64_kib() -> None:
    assert LOG_CHUNK == 64 * 1024


@pytest.mark.parametrize("split", range(1, len(SECRET)))
def test_a_secret_split_between_two_chunks_is_masked(tmp_path: Path, split: int) -> None:
    log = tmp_path / "s.log"
    before = b"x" * (LOG_CHUNK - split)  # the secret's first `split` bytes end the first chunk
    log.write_bytes(before + SECRET.encode() + b" after\n")
    text = _read(log, Masker([SECRET]))
    assert SECRET not in text
    assert text == before.decode() + MASK + " after\n"


def test_chunks_stay_bounded_on_a_log_without_line_breaks(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_bytes(b"y" * (LOG_CHUNK * 5))
    with open(log, "rb") as handle:
        reader = LogReader(handle, Masker([SECRET]), None, LOG_CHUNK)
        sizes = []
        while True:
            text, more = reader.read()
            sizes.append(len(text))
            if not more:
                break
        sizes.append(len(reader.finish()))
    assert sum(sizes) == LOG_CHUNK * 5
    assert max(sizes) <= LOG_CHUNK


@pytest.mark.parametrize("chunk", [3, 7, LOG_CHUNK])
def test_tail_gives_the_last_lines(tmp_path: Path, chunk: int) -> None:
    log = tmp_path / "s.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert _read(log, Masker([]), 3, chunk) == "line 997\nline 998\nline 999\n"
    assert _read(log, Masker([SECRET]), 2, chunk) == "line 998\nline 999\n"
    assert _read(log, Masker([SECRET]), 0, chunk) == ""
    assert _read(log, Masker([SECRET]), 5000, chunk).count("\n") == 1000


@pytest.mark.parametrize("chunk", [5, LOG_CHUNK])
def test_a_secret_folded_over_the_tail_cut_stays_masked(tmp_path: Path, chunk: int) -> None:
    """The last lines start in the middle of a secret broken over lines: the half shown
    is masked, as it is when the whole log is read."""
    log = tmp_path / "s.log"
    log.write_text("start\nSECRET\nVALUE-42\nend\n")
    whole = _read(log, Masker([SECRET]), None, chunk)
    assert whole == f"start\n{MASK}\n{MASK}\nend\n"
    assert _read(log, Masker([SECRET]), 2, chunk) == f"{MASK}\nend\n"
    assert _read(log, Masker([SECRET]), 3, chunk) == f"{MASK}\n{MASK}\nend\n"
