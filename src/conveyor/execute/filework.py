"""The slow file work of steps, off the runner loop: hashing a step's declared inputs
(to key it) and storing its outputs, on a pool of two threads.

Each result comes back as an event on one queue that the loop drains. Workers touch only
the workspace, the store and the digest cache (which takes a lock); the loop stays the one
place that talks to executors, the scheduler, the records and the reporter. Work on a
few small files is done in the loop itself: a thread hop would cost more than it saves.
"""

import queue
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from conveyor.domain.tracking import tracking_path
from conveyor.execute.launch import Launcher, Placed, Prepared, Refused
from conveyor.execute.workspace import MissingOutputError, OutputError, Workspace
from conveyor.metadata.records import OutputRecord
from conveyor.plan.model import StepPlan

if TYPE_CHECKING:  # concurrent.futures (and logging) load with the pool, not at start-up
    from concurrent.futures import Future, ThreadPoolExecutor

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


FileEvent = InputsHashed | OutputsStored


def inline(workspace: Workspace, paths: Iterable[str]) -> bool:
    """Whether file work on ``paths`` is small enough to do in the loop."""
    size = workspace.plain_size(paths)
    return size is not None and size < INLINE_BYTES


def hash_inputs(launcher: Launcher, placed: Placed) -> InputsHashed:
    return InputsHashed(placed.step.id, launcher.key(placed))


def store_outputs(
    workspace: Workspace, step: StepPlan, log_path: str | None = None
) -> OutputsStored:
    """The declared outputs, and the step's tracking file when it wrote one (or its log
    holds runs a Dotscience script published: they join the tracking directory)."""
    from conveyor.execute.dotscience_runs import capture  # not on a run of cache hits

    tracking = tracking_path(step.id)
    capture(log_path, workspace.root / tracking)
    written = workspace.exists(tracking)
    try:
        return OutputsStored(
            step.id, workspace.store_outputs((*step.outputs, *([tracking] if written else [])))
        )
    except MissingOutputError as exc:
        return OutputsStored(step.id, [], f"the step did not write its declared output {exc}")
    except OutputError as exc:  # a link out of the workspace, an OS error: this step only
        return OutputsStored(step.id, [], str(exc), retryable=False)


class FileWork:
    """The pool and the queue its results come back on (threads start on first use, so a
    run of cache hits starts none)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._done: queue.SimpleQueue[Future[FileEvent] | None] = queue.SimpleQueue()
        self._outstanding = 0

    @property
    def busy(self) -> bool:
        return self._outstanding > 0

    def submit(self, work: Callable[[], FileEvent]) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="conveyor-files")
        self._outstanding += 1
        self._pool.submit(work).add_done_callback(self._done.put)

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
        futures = [f for f in items if f is not None]
        self._outstanding -= len(futures)
        return [f.result() for f in futures]

    def close(self) -> None:
        """Wait for work under way: an output being stored is never left half-stored."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
