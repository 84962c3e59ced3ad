"""What is persisted about runs (``*Record`` in the glossary). Times are epoch seconds."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from conveyor.domain.jsonshape import JsonShape
from conveyor.domain.states import RunStatus, StepStatus

# Records that need no mutation nor field defaults are named tuples: a dataclass compiles
# up to six generated methods at import, and every command imports this module.


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class OutputRecord(JsonShape):
    """A declared output as stored: its path, digest, kind and size."""

    path: str
    digest: str
    kind: str = "file"  # "file" or "tree"
    size: int = 0


class InputRecord(NamedTuple):
    path: str
    digest: str


@dataclass
class RunRecord:
    """One run as recorded: what ran (pipeline, commit, params), where, by whom, how it ended."""

    id: str
    pipeline: str
    status: RunStatus
    commit: str | None
    dirty: bool
    created_at: float
    diff_digest: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    who: str = ""
    host: str = ""
    pid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    executor: str = "local"
    spec_path: str = ""
    trigger: str = "manual"
    workdir: str = ""
    error: str | None = None
    number: int | None = None
    """The run's number in its project (1, 2, ...: Drone's build number), given when the
    run is recorded (:meth:`MetadataRepository.create_run`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "pipeline": self.pipeline,
            "status": str(self.status),
            "commit": self.commit,
            "dirty": self.dirty,
            "diff_digest": self.diff_digest,
            "params": self.params,
            "who": self.who,
            "host": self.host,
            "executor": self.executor,
            "trigger": self.trigger,
            "pipeline_file": self.spec_path,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "error": self.error,
        }


@dataclass
class StepRunRecord:
    """One step of a run as recorded: its status, fingerprint, attempts, times and outputs."""

    run_id: str
    step_id: str
    job: str
    status: StepStatus
    fingerprint: str | None = None
    cached: bool = False
    cached_from: str | None = None  # run id whose step run produced the outputs
    exit_code: int | None = None
    attempt: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    log_path: str | None = None
    command: str = ""
    parts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    outputs: list[OutputRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.step_id,
            "job": self.job,
            "status": str(self.status),
            "cached": self.cached,
            "cached_from": self.cached_from,
            "exit_code": self.exit_code,
            "attempts": self.attempt,
            "fingerprint": self.fingerprint,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "duration": (
                round(self.ended_at - self.started_at, 3)
                if self.started_at is not None and self.ended_at is not None
                else None
            ),
            "error": self.error,
            "log": self.log_path,
            "outputs": [o.to_json() for o in self.outputs],
        }


class StepState(NamedTuple):
    """The live part of a step run: what a page that follows a run needs."""

    step_id: str
    status: StepStatus
    cached: bool
    exit_code: int | None
    attempt: int
    started_at: float | None
    ended_at: float | None


class CacheEntry(NamedTuple):
    """A fingerprint whose outputs are known: the step run that first produced them."""

    fingerprint: str
    step_id: str
    run_id: str
    outputs: tuple[OutputRecord, ...]


@dataclass(frozen=True)
class EventRecord:
    """Something that happened in a run (a warning, a step's start or end) and its data."""

    run_id: str
    kind: str
    at: float
    step_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
