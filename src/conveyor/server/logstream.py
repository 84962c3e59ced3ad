"""A step log as the API streams it: 64 KiB at a time, secrets masked across chunk
boundaries, optionally from the start of its last lines (``?tail=N``)."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from conveyor.sdk.logs import ran_since, tail_start
from conveyor.server.db.queue import QueuedRun
from conveyor.server.masking import MAX_HELD, Masker
from conveyor.server.state import ServerState

LOG_CHUNK = 64 * 1024


class LogReader:
    """Reads an open log from where the reader left it; a log still being written is
    read again after it grew (the handle stays open, so the worker's masked rewrite at
    the run's end cannot move the ground under the position reached).

    With ``tail``, reading starts some way before the last lines so that a secret broken
    over the lines at the cut is still recognised; masking keeps every line break, so the
    lines before the cut are counted off the masked text and dropped."""

    def __init__(
        self, handle: BinaryIO, masker: Masker, tail: int | None = None, chunk: int = LOG_CHUNK
    ) -> None:
        self.handle = handle
        self.chunk = chunk
        self.masking = masker.stream()
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.skip = 0  # line breaks of the masked text still to drop
        if tail is not None:
            start = tail_start(handle, tail, chunk)
            context = max(0, start - (masker.longest + MAX_HELD)) if masker else start
            handle.seek(context)
            self.skip = handle.read(start - context).count(b"\n")
            handle.seek(context)

    def read(self) -> tuple[str, bool]:
        """The next piece of masked text, and whether a whole chunk was read (more may
        be there already)."""
        data = self.handle.read(self.chunk)
        return self._out(self.masking.feed(data)), len(data) == self.chunk

    def finish(self) -> str:
        """What was held back (the end of the log may be the start of a secret)."""
        return self._out(self.masking.close(), final=True)

    def _out(self, data: bytes, final: bool = False) -> str:
        while self.skip and data:
            index = data.find(b"\n")
            if index < 0:
                data = b""
                break
            data = data[index + 1 :]
            self.skip -= 1
        return self.text.decode(data, final=final)


async def log_response(
    state: ServerState,
    run: QueuedRun,
    step_id: str,
    follow: bool,
    tail: int | None,
    after: float | None,
) -> StreamingResponse:
    """The streamed log of one step run (404 when it has none and will have none)."""
    masker = Masker((await asyncio.to_thread(state.secrets_for, run.project)).values())

    def find() -> tuple[Path | None, bool, bool]:
        """The log, whether no more will come, and whether the step ran since ``after``."""
        for step in state.db.records.step_runs(run.id):
            if step.step_id == step_id:
                finished = step.status.finished or run.status.finished
                path = Path(step.log_path) if step.log_path else None
                return path, finished, ran_since(step, after)
        current = state.db.queue.get(run.id)
        return None, current is None or current.status.finished, True

    missing = f"run {run.id} has no log for step {step_id!r}"
    return await stream_log(find, masker, follow, tail, missing)


Finder = Callable[[], tuple[Path | None, bool, bool]]
"""Where a step's log is, whether no more will come, and whether it ran since when asked."""


async def stream_log(
    find: Finder, masker: Masker, follow: bool, tail: int | None, missing: str
) -> StreamingResponse:
    """The masked log ``find`` locates, streamed (and followed while more may come);
    404 with ``missing`` when there is none and will be none."""
    path, finished, recent = await asyncio.to_thread(find)
    if path is None and finished:
        raise HTTPException(404, missing)

    async def stream() -> AsyncIterator[bytes]:
        current, done = path, finished
        handle: BinaryIO | None = None
        reader: LogReader | None = None
        try:
            while True:
                if handle is None and (current is None or not current.exists()):
                    current, done, _ = await asyncio.to_thread(find)
                if handle is None and current is not None and current.exists():
                    handle = await asyncio.to_thread(open, current, "rb")
                    reader = await asyncio.to_thread(LogReader, handle, masker, tail)
                out, more = await asyncio.to_thread(reader.read) if reader else ("", False)
                if out:
                    yield out.encode()
                if more:
                    continue
                if done or not follow:
                    if reader is not None and (out := reader.finish()):
                        yield out.encode()
                    return
                await asyncio.sleep(0.2)
                _, done, _ = await asyncio.to_thread(find)
        finally:
            if handle is not None:
                handle.close()

    media = "text/plain; charset=utf-8"
    if not recent:
        return StreamingResponse(iter(()), media_type=media)
    return StreamingResponse(stream(), media_type=media)
