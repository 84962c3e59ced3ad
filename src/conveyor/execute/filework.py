"""The slow file work of steps, off the runner loop: hashing a step's declared inputs
(to key it) and storing its outputs, on a pool of two threads.

Each result comes back as an event on one queue that the loop drains. Workers touch only
the workspace, the store and the digest cache (which takes a lock); the loop stays the one
place that talks to executors, the scheduler, the records and the reporter. Work on a
few small files is done in the loop itself: a thread hop would cost more than it saves.
"""

import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from conveyor.domain.tracking import tracking_path
from conveyor.execute.launch import Launcher, Placed, Prepared, Refused
from conveyor.execute.workspace import MissingOutputError, OutputError, Workspace
from conveyor.metadata.records import OutputRecord
from conveyor.plan.model import StepPlan
from conveyor.store.cas import Write

WORKERS = 2
INLINE_BYTES = 1 << 20
"""Plain files below this many bytes in all are hashed or stored in the loop (~1 ms)."""


class InputsHashed(NamedTuple):
    step_id: str
    result: Prepared | Refused


class OutputsStored(NamedTuple):
    step_id: str
    outputs: list[OutputRecord]
    error: str | None = None
    """Why the outputs could not be stored: the step failed."""
    retryable: bool = True
    writes: tuple[Write, ...] = ()
    """Blob writes left to the loop: made before the outputs are recorded."""


FileEvent = InputsHashed | OutputsStored


def inline(workspace: Workspace, paths: Iterable[str]) -> bool:
    """Whether file work on ``paths`` is small enough to do in the loop."""
    return workspace.small_files(paths, INLINE_BYTES) is not None


def small_inputs(workspace: Workspace, step: StepPlan) -> dict[str, os.stat_result] | None:
    """The ``lstat`` of the step's declared inputs when hashing them is small enough to do
    in the loop (its key then reuses them: a no-op run asks once per input, not twice)."""
    return workspace.small_files(step.inputs, INLINE_BYTES)


def hash_inputs(
    launcher: Launcher, placed: Placed, seen: Mapping[str, os.stat_result] | None = None
) -> InputsHashed:
    return InputsHashed(placed.step.id, launcher.key(placed, seen))


def store_outputs(
    workspace: Workspace, step: StepPlan, log_path: str | None = None, later: bool = False
) -> OutputsStored:
    """The declared outputs, and the step's tracking file when it wrote one (or its log
    holds runs a Dotscience script published: they join the tracking directory).
    ``later``: small blobs are read now and written by the event's ``writes``."""
    from conveyor.execute.dotscience_runs import capture  # not on a run of cache hits

    tracking = tracking_path(step.id)
    capture(log_path, workspace.root / tracking)
    written = workspace.exists(tracking)
    writes: list[Write] | None = [] if later else None
    try:
        outputs = workspace.store_outputs((*step.outputs, *([tracking] if written else [])), writes)
        return OutputsStored(step.id, outputs, writes=tuple(writes or ()))
    except MissingOutputError as exc:
        return OutputsStored(step.id, [], f"the step did not write its declared output {exc}")
    except OutputError as exc:  # a link out of the workspace, an OS error: this step only
        return OutputsStored(step.id, [], str(exc), retryable=False)


class _Raised(NamedTuple):
    """A worker's unexpected exception, raised again in the loop's thread."""

    error: BaseException


class FileWork:
    """Two threads, the work queue they take from and the queue their results come back
    on (the threads start on first use, so a run of cache hits starts none). Plain
    threads, not ``concurrent.futures``: its import (with ``logging``) costs a run more
    than the pool's few lines."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._work: queue.SimpleQueue[Callable[[], FileEvent] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[FileEvent | _Raised | None] = queue.SimpleQueue()
        self._outstanding = 0

    @property
    def busy(self) -> bool:
        return self._outstanding > 0

    def submit(self, work: Callable[[], FileEvent]) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._serve, name=f"conveyor-files-{n}", daemon=True)
                for n in range(WORKERS)
            ]
            for thread in self._threads:
                thread.start()
        self._outstanding += 1
        self._work.put(work)

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            try:
                self._done.put(work())
            except BaseException as exc:  # the loop raises it: never lost with the thread
                self._done.put(_Raised(exc))

    def wake(self) -> None:
        """End a wait in :meth:`results` early (safe from a signal handler)."""
        self._done.put(None)

    def results(self, timeout: float) -> list[FileEvent]:
        """The work done so far, waiting up to ``timeout`` seconds for the first piece; a
        worker's unexpected exception is raised here, in the loop's thread."""
        try:
            items = [self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()]
            while not self._done.empty():
                items.append(self._done.get_nowait())
        except queue.Empty:
            return []
        done = [item for item in items if item is not None]
        self._outstanding -= len(done)
        for item in done:
            if isinstance(item, _Raised):
                raise item.error
        return [item for item in done if not isinstance(item, _Raised)]

    def close(self) -> None:
        """Wait for the work queued and under way: an output being stored is never left
        half-stored (each thread ends at its stop mark, after the work before it)."""
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
