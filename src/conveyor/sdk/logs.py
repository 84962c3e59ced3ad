"""Step logs read in constant memory: chunk by chunk, the last lines found by reading
backwards from the end, and ``--since`` as a choice of step runs.

A step log is the step's raw output (no timestamps on its lines), so ``since`` selects
the step runs that were still writing their log at or after that time: running ones,
and those that ended since.
"""

from __future__ import annotations

import codecs
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from conveyor.domain.durations import parse_duration
from conveyor.errors import NotFoundError, UsageError
from conveyor.metadata.records import RunRecord, StepRunRecord

CHUNK = 64 * 1024
MAX_SINCE = 64
"""The longest ``since`` value read (an ISO time with a zone is 32 characters)."""
_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""What ``str.splitlines`` breaks lines at (what printing a whole log line by line did)."""
_OTHER = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def tail_start(handle: BinaryIO, lines: int, block: int = CHUNK) -> int:
    """The offset in ``handle`` where its last ``lines`` lines start (a line ends at
    ``\\n``; a last line without one counts), read backwards a block at a time."""
    end = handle.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    position = end
    while position > 0:
        size = min(block, position)
        position -= size
        handle.seek(position)
        data = handle.read(size)
        index = len(data)
        if position + size == end and data.endswith(b"\n"):
            index -= 1  # the last line's own line break starts no line after it
        while (index := data.rfind(b"\n", 0, index)) >= 0:
            lines -= 1
            if not lines:
                return position + index + 1
    return 0


def read_chunks(handle: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk


def decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text of the chunks, bad bytes replaced (a character split between two
    chunks is decoded whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        if text := decoder.decode(chunk):
            yield text
    if text := decoder.decode(b"", final=True):
        yield text


def prefixed(texts: Iterable[str], prefix: str) -> Iterator[bytes]:
    """Every line of the text with ``prefix`` before it and a line break after it, as
    ``str.splitlines`` splits it, UTF-8 encoded; a long line is given out as it comes."""
    start = prefix.encode()
    at_start = True
    held = ""  # a final "\r" may be the first half of "\r\n"
    for piece in texts:
        text = held + piece
        held = "\r" if text.endswith("\r") else ""
        if held:
            text = text[:-1]
        if _OTHER.search(text):  # rare: make every line break a "\n" first
            text = _BREAK.sub("\n", text)
        if not text:
            continue
        data = text.encode()  # prefixed as bytes: an ASCII log stays a fast ASCII copy
        body = (start if at_start else b"") + data.replace(b"\n", b"\n" + start)
        at_start = data.endswith(b"\n")
        yield body[: len(body) - len(start)] if at_start else body
    if held:
        yield (start if at_start else b"") + b"\n"
    elif not at_start:
        yield b"\n"


def parse_since(value: str, now: float) -> float:
    """The time (seconds since the epoch) that ``value`` names: a duration before ``now``
    (``90s``, ``10m``, ``2h``, ``1d``) or an ISO time (local time when it has no zone)."""
    refused = UsageError(
        f"--since {value[:MAX_SINCE]!r} is neither a duration like 10m nor an ISO time "
        "like 2026-12-02T14:00"
    )
    if not value or len(value) > MAX_SINCE:
        raise refused
    try:
        since = now - parse_duration(value)
    except ValueError:
        try:
            since = datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError, OSError):
            raise refused from None
    if not math.isfinite(since):
        raise refused
    return since


def ran_since(step: StepRunRecord, since: float | None) -> bool:
    """Whether the step run was writing its log at or after ``since``."""
    return since is None or step.ended_at is None or step.ended_at >= since


@dataclass(frozen=True)
class StepLog:
    step_id: str
    path: Path

    def chunks(self, tail: int | None = None, size: int = CHUNK) -> Iterator[bytes]:
        """The log's bytes (its last ``tail`` lines only, when given), chunk by chunk."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise NotFoundError(f"the log of {self.step_id} ({self.path}) is gone") from None
        with handle:
            if tail is not None:
                handle.seek(tail_start(handle, tail))
            yield from read_chunks(handle, size)


def step_logs(
    steps: list[StepRunRecord], run: RunRecord, step: str | None, since: float | None = None
) -> list[StepLog]:
    """The logs to show: of one step (refused when it has none), or of every step that
    has one, in the order they started; only of step runs that ran since ``since``."""
    from conveyor.sdk.inspect import _find_step

    if step:
        record = _find_step(steps, step)
        if not record.log_path:
            reason = "it was served from the cache" if record.cached else f"it was {record.status}"
            raise NotFoundError(f"step {record.step_id} has no log in run {run.id}: {reason}")
        chosen = [record]
    else:
        chosen = sorted(steps, key=lambda s: s.started_at or 0)
    return [
        StepLog(s.step_id, Path(s.log_path)) for s in chosen if s.log_path and ran_since(s, since)
    ]
