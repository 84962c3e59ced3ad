"""The job event log of shared-filesystem mode: what happened to each job, read from
the file the shadows append to, instead of asking the schedd.

``job_fact`` is pure (an event's type name and attributes in, a ``JobFact`` out); the
``EventLog`` reads new events through the bindings' ``JobEventLog``, without blocking,
from where its last read stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from conveyor.executors.htcondor.pool import Pool

FactKind = Literal["started", "exited", "signalled", "held", "aborted", "evicted"]


@dataclass(frozen=True)
class JobFact:
    job_id: str
    """``cluster.proc``."""
    kind: FactKind
    value: int | None = None
    """The exit code (``exited``) or the signal (``signalled``)."""
    text: str = ""
    """The slot (``started``), or the reason HTCondor gave (held, aborted, evicted)."""


def job_fact(type_name: str, job_id: str, attrs: Mapping[str, Any]) -> JobFact | None:
    """What one event says of its job; None for events that change nothing here
    (submitted, image size, released...)."""
    if type_name == "EXECUTE":
        return JobFact(job_id, "started", text=str(attrs.get("SlotName") or ""))
    if type_name == "JOB_TERMINATED":
        if attrs.get("TerminatedNormally", True) and attrs.get("ReturnValue") is not None:
            return JobFact(job_id, "exited", int(attrs["ReturnValue"]))
        signal = attrs.get("TerminatedBySignal")
        return JobFact(job_id, "signalled", int(signal) if signal is not None else None)
    if type_name == "JOB_HELD":
        return JobFact(job_id, "held", text=str(attrs.get("HoldReason") or "no reason given"))
    if type_name == "JOB_ABORTED":
        return JobFact(job_id, "aborted", text=str(attrs.get("Reason") or "no reason given"))
    if type_name in ("JOB_EVICTED", "SHADOW_EXCEPTION"):
        why = attrs.get("Message") or attrs.get("Reason") or "no reason given"
        return JobFact(job_id, "evicted", text=str(why))
    return None


class EventLog:
    """New events of one log, as facts; a log not written yet has none."""

    def __init__(self, pool: Pool, path: Path) -> None:
        self.path = path
        self._pool = pool
        self._reader: Any = None

    def read(self) -> list[JobFact]:
        if self._reader is None and self.path.exists():
            self._reader = self._pool.open_events(self.path)
        if self._reader is None:
            return []
        facts = []
        for type_name, job_id, attrs in self._pool.read_events(self._reader, self.path):
            fact = job_fact(type_name, job_id, attrs)
            if fact is not None:
                facts.append(fact)
        return facts
