"""The executor contract: submit, poll, cancel, close, recover; started, capacity.

An executor runs one invocation (a shell command with its environment) somewhere and
reports how it ended. It knows nothing of plans, caches or records: the runner alone
decides what to run, enforces timeouts (by calling ``cancel``) and stores outputs.
Remote executors use ``inputs``/``outputs`` to move files; the local one runs in place.
A handle's ``backend_id`` is text that the runner records, so that a later process can
``recover`` what a process that died mid-run left running.

Handles, completions, capacities and recoveries are named tuples (immutable, compared and
printed by value), not dataclasses: every run imports this module, and a frozen dataclass
compiles six generated methods at import.

Two cheap questions let the runner tell waiting from running: ``started`` (which
invocations have begun to run: a step's ``timeout`` counts from then, its
``queue-timeout`` until then) and ``capacity`` (whether the backend has anywhere to run
anything: queued steps fail when it has had none for its ``no_capacity_timeout``). Both
answer from what the executor already knows (its last poll), never with a round trip
of their own per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from conveyor.domain.types import Resources

EndState = Literal["exited", "cancelled", "lost", "error"]


@dataclass(frozen=True)
class Invocation:
    """One attempt of one step, as an executor sees it."""

    key: str
    """Unique per attempt: ``run_id/step_id/attempt``."""
    command: str
    """Shell text run by ``/bin/sh -e -c``."""
    env: Mapping[str, str]
    """What the pipeline sets for the step (its env and ``CONVEYOR_*``), without the
    caller's own environment: each executor chooses the base it adds this to (the local
    one inherits the caller's environment; a batch system uses the worker's)."""
    workdir: Path
    """The project directory; outputs are written relative to it."""
    log_path: Path
    """Where stdout and stderr go (combined, in order)."""
    inputs: tuple[str, ...] = ()
    """Project-relative files the step reads (for executors without a shared filesystem)."""
    outputs: tuple[str, ...] = ()
    """Project-relative files or directories the step writes."""
    resources: Resources = field(default_factory=Resources)
    timeout: float | None = None
    """Seconds; the runner enforces it, a backend may also pass it on."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Backend-specific extras from the pipeline (e.g. HTCondor requirements)."""
    contained: bool = False
    """The command starts the step in a container (which isolates it): a local sandbox
    does not wrap it, as the container runtime must reach its own files."""
    volumes: tuple[tuple[str, str], ...] = ()
    """(host directory, path in the container): the run's temporary directories the
    container wrapper mounts; executors that start no containers ignore them."""
    privileged: bool = False
    """The container wrapper starts a privileged container (the project allowed it)."""
    image_id: str | None = None
    """The image the step runs in: a container wrapper (execute/contained.py) starts
    ``command`` in it; the runner sets it only for executors that declare
    ``starts_containers = True``."""


class Handle(NamedTuple):
    """What a backend gave back for a submitted invocation."""

    key: str
    backend_id: str


class Recovered(NamedTuple):
    """What ``recover`` did about one recorded handle."""

    key: str
    ended: bool
    """True when something of the invocation was still running and has been ended."""
    message: str


class Completion(NamedTuple):
    """How an invocation ended."""

    key: str
    state: EndState
    exit_code: int | None = None
    message: str | None = None
    """Why, when it did not simply exit (cancelled, lost, held, could not start)."""
    retryable: bool = True
    """False when another attempt would end the same way (no machine of the pool can
    ever match it): the step fails without its ``retries``."""
    ran_on: Mapping[str, str] | None = None
    """Where it ran, as the backend names it (HTCondor: ``job``, ``slot``, ``host``):
    recorded with the step run (``show --json``)."""


class Capacity(NamedTuple):
    """Where the backend could run invocations now, as far as it knows."""

    slots: int | None
    """Slots (cores, workers, machines) able to run a step; None: unknown or unbounded
    (a queued step then waits as long as its ``queue-timeout`` allows)."""
    why: str = ""
    """When ``slots`` is 0: what is missing, in one sentence (``no Spark worker is alive``)."""
    patience: float | None = None
    """Seconds without capacity before queued steps fail (the executor's
    ``no_capacity_timeout`` setting); None: never."""
    idle: float | None = None
    """Seconds the backend has had none, as the executor counts them (``IdleClock``:
    from when it last had some, or from its start plus a grace before it ever had any);
    None: the runner counts from when it first saw none."""


UNBOUNDED = Capacity(None)


class IdleClock:
    """What ``no_capacity_timeout`` counts from: the moment the backend last had
    capacity or, before it ever had any, its start plus ``grace`` (a cluster may take a
    while to give a new application its first executor). Fed by the executor with every
    count it makes, running steps or not, so a loss is dated when it happens."""

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace = grace
        self._clock = clock
        self._since: float | None = None

    def started(self) -> None:
        """The backend was just started (or connected to)."""
        if self._since is None:
            self._since = self._clock() + self._grace

    def idle(self, slots: int | None) -> float | None:
        """Seconds without capacity up to now, given the count just made; None before
        the start and any capacity (the runner then counts from its first look)."""
        now = self._clock()
        if slots != 0:  # some, or unknown (a local master): nothing is missing
            self._since = now
        if self._since is None:
            return None
        return max(0.0, now - self._since)


@runtime_checkable
class Executor(Protocol):
    name: str
    default_parallelism: int
    """How many invocations to keep in flight when the user does not say (-j)."""

    def submit(self, invocation: Invocation) -> Handle:
        """Start the invocation; return at once with a handle."""
        ...

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        """Completions among ``handles``; waits up to ``timeout`` seconds for the first."""
        ...

    def cancel(self, handles: Sequence[Handle]) -> None:
        """Ask the backend to stop these; their completions arrive through ``poll``."""
        ...

    def close(self) -> None:
        """Release connections and processes; pending invocations are cancelled."""
        ...

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        """End what is left of invocations submitted by another, dead process (its handles
        as recorded: ``key`` and ``backend_id``). Called on a fresh instance; one answer per
        handle; a handle this backend does not recognise is answered, not raised on."""
        ...

    def started(self, handles: Sequence[Handle]) -> list[str]:
        """Keys of the invocations among ``handles`` that have begun to run (a process
        spawned, a job Running, a task claimed its step), from what the last ``poll``
        learned; an invocation that already completed may be left out."""
        ...

    def capacity(self) -> Capacity:
        """Whether the backend has anywhere to run steps; cheap (at most one query per
        poll interval, cached)."""
        ...


class DelegatingExecutor:
    """The base of an executor wrapper: every contract method goes to ``inner``; a
    subclass overrides the ones it changes."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.name = inner.name
        self.default_parallelism = inner.default_parallelism

    def submit(self, invocation: Invocation) -> Handle:
        return self.inner.submit(invocation)

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        return self.inner.poll(handles, timeout)

    def cancel(self, handles: Sequence[Handle]) -> None:
        self.inner.cancel(handles)

    def close(self) -> None:
        self.inner.close()

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        return self.inner.recover(handles)

    def started(self, handles: Sequence[Handle]) -> list[str]:
        return self.inner.started(handles)

    def capacity(self) -> Capacity:
        return self.inner.capacity()


ExecutorSettings = Mapping[str, object]


def starts_containers(executor: Executor) -> bool:
    """An optional capability: executors that do not declare it run no containers."""
    return bool(getattr(executor, "starts_containers", False))
