"""A Pachyderm job's datums as steps of a batch executor (Dask, Spark, HTCondor).

Each try of a datum is one Invocation: its directory on this machine holds the datum's
files at ``pfs/<input>/...`` (declared as the step's inputs, so the executor stages them
where it runs) and ``pfs/out`` is its one declared output, which the executor brings
back. On the worker, ``executors/pfs_sandbox.datum_shell`` shows that ``pfs`` at
``/pfs`` through bubblewrap, as a local datum sees it: real specs hard-code ``/pfs``.
A worker without bubblewrap ends the datum with one clear line (an HTCondor pool in a
chroot cannot make the user namespace it needs: docs/datasets.md).

The driver keeps what ``pachyderm_datum.run_datum`` keeps locally: ``datum_tries``
tries (each a new invocation; none after a try that another would end the same way: no
bubblewrap, a pool that can never match it), ``datum_timeout`` and ``job_timeout`` enforced by
``cancel``, ``err_cmd`` after the last failure, one log per datum, the outputs stored
as a tree. The job (``pachyderm_jobs``) merges the trees into one commit, as for local.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.types import Resources
from conveyor.errors import ConveyorError
from conveyor.executors.base import Completion, Executor, Handle, Invocation
from conveyor.executors.pfs_lane import remove_tree
from conveyor.executors.pfs_sandbox import NO_BWRAP, datum_shell
from conveyor.sdk.pachyderm_datum import DatumWork, Files, materialise, memory_limit, time_left
from conveyor.spec.pachyderm_model import PachydermPipeline
from conveyor.spec.pachyderm_quantity import mebibytes
from conveyor.store.cas import ContentStore

POLL = 1.0  # seconds a poll waits for the first completion
TIMEOUT_CHECK = 0.25
"""Seconds between two passes over the tries in flight for their timeouts (and when
they started): with a thousand in flight, a pass after every completion would cost
the square of the datum count. A try's timeout may so count from up to this late."""
SANDBOX_ENV = {"HOME": "/tmp", "TMPDIR": "/tmp", "USER": "nobody", "LOGNAME": "nobody"}


@dataclass
class _Try:
    """One invocation of a datum: a try of its ``cmd`` or its ``err_cmd``."""

    datum: _Datum
    name: str  # the try's number, or "err"
    where: Path
    handle: Handle | None = None
    limit: float | None = None
    began: float | None = None  # when the executor said it started
    timed_out: str | None = None  # why it was cancelled: which timeout


@dataclass
class _Datum:
    item: DatumWork
    log: Path
    attempt: int = 0
    start: float = 0.0


class RemoteDatums:
    """Runs the datums of one job on ``executor``, at most ``width`` at once."""

    def __init__(
        self,
        executor: Executor,
        store: ContentStore,
        spec: PachydermPipeline,
        job_id: str,
        files: Files,
        scratch: Path,
        logs: Path,
        deadline: float | None,
    ) -> None:
        self.executor = executor
        self.store = store
        self.spec = spec
        self.job_id = job_id
        self.files = files
        self.scratch = scratch
        self.logs = logs
        self.deadline = deadline

    def run(self, todo: list[DatumWork], width: int, finished: Callable[[DatumWork], None]) -> None:
        """Every datum of ``todo`` to its end (success, failed or recovered); each one's
        row is updated and handed to ``finished``. On an error of the executor (or an
        interrupt) what is in flight is cancelled first."""
        self.logs.mkdir(parents=True, exist_ok=True)
        waiting: deque[_Try] = deque()
        for item in todo:
            log = self.logs / f"{item.datum.id}.log"
            item.row["log"] = str(log)
            log.write_bytes(b"")
            datum = _Datum(item, log, start=time.monotonic())
            waiting.append(self._next_try(datum))
        live: dict[str, _Try] = {}
        handles: list[Handle] = []
        timed = self.deadline is not None or self.spec.datum_timeout is not None
        checked = 0.0
        try:
            while waiting or live:
                changed = not handles and bool(live)
                while waiting and len(live) < max(1, width):
                    attempt = waiting.popleft()
                    if self._submit(attempt):
                        live[attempt.handle.key] = attempt  # type: ignore[union-attr]
                        changed = True
                    else:  # the job's time was up before it could start
                        self._after(attempt, None, waiting, finished)
                if changed:  # a pass over the tries only when they changed
                    handles = [t.handle for t in live.values() if t.handle is not None]
                for done in self.executor.poll(handles, POLL):
                    attempt = live.pop(done.key)
                    handles = []  # made again before the next poll
                    self._after(attempt, done, waiting, finished)
                now = time.monotonic()
                if timed and now - checked >= TIMEOUT_CHECK:  # not a pass per completion
                    checked = now
                    self._enforce_timeouts(live)
        except BaseException:
            self.executor.cancel([t.handle for t in live.values() if t.handle is not None])
            raise
        finally:
            remove_tree(self.scratch)

    # -- one try ------------------------------------------------------------------------
    def _next_try(self, datum: _Datum) -> _Try:
        datum.attempt += 1
        name = str(datum.attempt)
        return _Try(datum, name, self.scratch / datum.item.datum.id / name)

    def _submit(self, attempt: _Try) -> bool:
        """Stage the try's files and hand it to the executor (False: no time left)."""
        item = attempt.datum.item
        transform = self.spec.transform
        limit = time_left(self.spec.datum_timeout, self.deadline)
        with open(attempt.datum.log, "ab") as out:
            if attempt.name == "err":
                out.write(b"--- err_cmd\n")
            else:
                item.row["tries"] = attempt.datum.attempt
                out.write(f"--- try {attempt.name} of {self.spec.datum_tries}\n".encode())
            if limit is not None and limit <= 0:
                out.write(b"--- the job's timeout has passed\n")
                return False
        pfs = attempt.where / "pfs"
        materialise(self.store, item.datum, self.files, pfs)
        cmd, stdin = (
            (transform.err_cmd, transform.err_stdin)
            if attempt.name == "err"
            else (transform.cmd, transform.stdin)
        )
        if stdin:
            (attempt.where / "stdin").write_text("".join(line + "\n" for line in stdin))
        env = {**SANDBOX_ENV, **dict(transform.env), **item.datum.env()}
        env["PACH_JOB_ID"] = self.job_id
        names = sorted({i.name for i in item.datum.inputs})
        command = datum_shell(
            cmd, transform.working_dir, env, names, bool(stdin), memory_limit(self.spec)
        )
        # every file, not the directories: HTCondor's staging transfers files only
        staged = tuple(
            path.relative_to(attempt.where).as_posix()
            for name in names
            for path in sorted((pfs / name).rglob("*"))
            if path.is_file()
        ) + (("stdin",) if stdin else ())
        invocation = Invocation(
            key=f"{self.job_id}/{item.datum.id}/{attempt.name}",
            command=command,
            env={},
            workdir=attempt.where,
            log_path=attempt.where / "log",
            inputs=staged,
            outputs=("pfs/out",),
            resources=step_resources(self.spec),
            timeout=limit,
        )
        attempt.limit = limit
        attempt.handle = self.executor.submit(invocation)
        return True

    def _enforce_timeouts(self, live: dict[str, _Try]) -> None:
        """Cancel the tries that ran longer than their limit (from when they started)."""
        handles = [t.handle for t in live.values() if t.handle is not None]
        now = time.monotonic()
        for key in self.executor.started(handles):
            attempt = live[key]
            if attempt.began is None:
                attempt.began = now
        late = []
        for attempt in live.values():
            if attempt.timed_out is not None:
                continue  # cancelled already: its completion is on its way
            if self.deadline is not None and now > self.deadline:  # even if still queued
                attempt.timed_out = "the job's timeout has passed"
            elif attempt.limit is not None and now - (attempt.began or now) > attempt.limit:
                attempt.timed_out = f"timed out after {attempt.limit} s"
            if attempt.timed_out is not None and attempt.handle is not None:
                late.append(attempt.handle)
        if late:
            self.executor.cancel(late)

    def _after(
        self,
        attempt: _Try,
        done: Completion | None,
        waiting: deque[_Try],
        finished: Callable[[DatumWork], None],
    ) -> None:
        """Store a successful try's outputs; else try again, run err_cmd, or give up."""
        datum = attempt.datum
        item, row = datum.item, datum.item.row
        code = _code(done)
        with open(datum.log, "ab") as out:
            log = attempt.where / "log"
            if log.is_file():
                out.write(log.read_bytes())
            if done is not None and done.state != "exited":
                out.write(f"--- {done.message or done.state}\n".encode())
            if attempt.timed_out is not None:
                out.write(f"--- {attempt.timed_out}\n".encode())
            if code == NO_BWRAP:
                out.write(b"--- the worker cannot run datums (no bubblewrap): see its log above\n")
            accepted = {0, *self.spec.transform.accept_return_code}
            if attempt.name == "err":
                out.write(f"--- err_cmd exit code {code}\n".encode())
                if code == 0:
                    row["state"] = "recovered"
                return self._end(attempt, finished)
            if code in accepted:
                try:
                    out_dir = attempt.where / "pfs" / "out"
                    tree, _ = self.store.put_tree(out_dir, boundary=out_dir)
                except ConveyorError as exc:
                    out.write(f"--- its outputs cannot be stored: {exc}\n".encode())
                    row["state"] = "failed"
                    return self._end(attempt, finished)
                item.tree = tree
                row.update(state="success", tree=tree)
                return self._end(attempt, finished)
            out.write(f"--- exit code {code}\n".encode())
        row["state"] = "failed"
        remove_tree(attempt.where)
        out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
        final = done is None or not done.retryable or code == NO_BWRAP
        if final or out_of_time:
            pass  # no further try could end otherwise
        elif datum.attempt < max(1, self.spec.datum_tries):
            waiting.appendleft(self._next_try(datum))
            return None
        if self.spec.transform.err_cmd and done is not None:
            waiting.appendleft(_Try(datum, "err", attempt.where.parent / "err"))
            return None
        return self._end(attempt, finished)

    def _end(self, attempt: _Try, finished: Callable[[DatumWork], None]) -> None:
        remove_tree(attempt.where.parent)
        datum = attempt.datum
        datum.item.row["duration"] = round(time.monotonic() - datum.start, 3)
        finished(datum.item)


def _code(done: Completion | None) -> int:
    """The try's exit code as the local run reports it (-1: it never ran to an end)."""
    if done is None or done.state != "exited" or done.exit_code is None:
        return -1
    return done.exit_code


def step_resources(spec: PachydermPipeline) -> Resources:
    """What a datum's step asks of its machine: the spec's ``resource_requests`` (cpu,
    memory and disk as Kubernetes quantities, in MiB here, gpu number); a field it leaves
    out is taken from ``resource_limits``, as Kubernetes defaults a request to its limit.
    The executor schedules on these (HTCondor's request_*, Spark's task resources); the
    memory limit is also enforced on the datum itself (``datum_shell``'s ``ulimit -v``)."""
    asked = spec.resource_requests
    cap = spec.resource_limits
    if asked is None and cap is None:
        return Resources()

    def pick(field: str) -> object:
        mine = getattr(asked, field, None) if asked is not None else None
        return mine if mine is not None else getattr(cap, field, None) if cap else None

    cpu = pick("cpu")
    gpus = pick("gpu_number")
    return Resources(
        cpus=float(cpu) if isinstance(cpu, int | float) and cpu else 1.0,
        memory_mb=mebibytes(_text(pick("memory"))),
        gpus=gpus if isinstance(gpus, int) else 0,
        disk_mb=mebibytes(_text(pick("disk"))),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
