"""Group commit of finished executions: the low_latency calls that end while another's
record is being written share the next transaction (one ``INSERT`` of many rows)
instead of one transaction each.

Nothing is lost or answered early: every caller waits until the transaction holding
its row has committed (and gets its own error: a batch that fails is written again
row by row, so one bad row fails no other). The first caller with nothing
being written writes (the leader); callers that arrive meanwhile queue their rows; when
the leader's transaction ends, the oldest of them leads the next one with all the rows
queued by then. No thread of its own: a quiet server writes each row at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

MAX_BATCH = 500
"""Rows in one transaction at most (a burst is written in several)."""


@dataclass
class _Waiting:
    row: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    """Set instead of ``done``: this caller writes the next batch."""
    error: BaseException | None = None


class Journal:
    def __init__(self, engine: sa.Engine, insert: Any) -> None:
        self.engine = engine
        self.insert = insert
        self._lock = threading.Lock()
        self._queued: list[_Waiting] = []
        self._writing = False

    def write(self, row: dict[str, Any]) -> None:
        """Commit ``row`` (with others that come at the same time); raises its error."""
        me = _Waiting(row)
        with self._lock:
            if self._writing:
                self._queued.append(me)
            else:
                self._writing = True
                me.lead = True
        while not me.lead:
            me.done.wait()
            if not me.lead:
                if me.error is not None:
                    raise me.error
                return
        self._lead(me)
        if me.error is not None:
            raise me.error

    def _lead(self, me: _Waiting) -> None:
        with self._lock:
            batch = [me, *self._queued[: MAX_BATCH - 1]]
            del self._queued[: MAX_BATCH - 1]
        try:
            with self.engine.begin() as conn:
                conn.execute(self.insert, [w.row for w in batch])
        except Exception:  # one row's fault is its own: each alone, with its own outcome
            for waiting in batch:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(self.insert, waiting.row)
                except Exception as exc:
                    waiting.error = exc
        with self._lock:
            following = self._queued.pop(0) if self._queued else None
            if following is None:
                self._writing = False
        for waiting in batch[1:]:
            waiting.lead = False
            waiting.done.set()
        if following is not None:  # it writes the rows queued during this transaction
            following.lead = True
            following.done.set()
