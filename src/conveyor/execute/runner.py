"""The runner loop: the only place that talks to executors, the scheduler and the records.

It feeds the scheduler events and carries out its decisions. Hashing a step's inputs and
storing its outputs run on a small pool (execute/filework.py) whose results come back as
events, so a big file holds up no other step's completion, deadline or cancel. A small
output is read and hashed in the loop; when ``-j`` leaves a core spare, its blob's file is
written after the next steps start (the bytes stored are those read, whatever a later step
does to the file), and every records write and cache hit first waits for those writes. Records
are written in transactions that each cover whole loop turns, so a kill at any moment
leaves a consistent database: every step run is either recorded with its outputs or not
at all.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.domain.tracking import tracking_path
from conveyor.errors import ExecutorError
from conveyor.execute import events as ev
from conveyor.execute import steprecords
from conveyor.execute.actionstate import OUTPUTS_EVENT, ActionState
from conveyor.execute.cache import CacheHit, CacheMiss, StepCache
from conveyor.execute.edits import KeepError, keep_edited
from conveyor.execute.filework import (
    FileEvent,
    FileWork,
    InputsHashed,
    OutputsStored,
    hash_inputs,
    inline,
    small_inputs,
    store_outputs,
)
from conveyor.execute.inflight import Active, InFlight
from conveyor.execute.launch import Launcher, Prepared, Refused, RunOptions
from conveyor.execute.reporting import Reporter
from conveyor.execute.scheduler import Scheduler
from conveyor.execute.workspace import OutputError, Workspace
from conveyor.metadata.records import EventRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.plan.actions import BadOutput
from conveyor.plan.model import ExecutionPlan, StepPlan
from conveyor.store.cas import Write

if TYPE_CHECKING:  # types only: a no-op run loads no executor module
    from conveyor.executors.base import Completion, Executor, Handle

__all__ = ["RunOptions", "Runner"]

_POLL_CAP = 0.25  # seconds: how soon a cancel request or a timeout is noticed
# Records are written before the runner waits for anything longer than a peek, and at
# least this often while it is busy: a chain of quick steps does not pay a commit per
# step, and a kill loses at most the busy last moments (those steps run again).
_FLUSH_INTERVAL = 0.1
_PEEK = 0.02


def _cores() -> int:
    """This machine's cores, as ``-j`` counts them by default (executors/local_settings.py)."""
    return os.cpu_count() or 1


class Runner:
    def __init__(
        self,
        run: RunRecord,
        plan: ExecutionPlan,
        executors: Mapping[str, Executor],
        default_executor: str,
        workspace: Workspace,
        records: MetadataRepository,
        log_dir: Path,
        reporter: Reporter,
        options: RunOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: the monotonic seconds that deadlines and flushes are measured in."""
        self.run = run
        self.plan = plan
        self.executors = dict(executors)
        if options.runtime is not None:  # image steps run in containers: wrap who starts them
            from conveyor.execute.contained import with_containers

            self.executors = with_containers(executors, options.runtime)
        self.default_executor = default_executor
        self.workspace = workspace
        self.records = records
        self.log_dir = log_dir
        self.reporter = reporter
        self.options = options
        self._steps = {s.id: s for s in plan.steps}
        self._scheduler = Scheduler(plan, options.parallelism, options.facts)
        self._batch = WriteBatch()
        self._active = InFlight(clock)
        self._outputs: dict[str, list[OutputRecord]] = {}
        self._cache = StepCache({}, options.force)
        self._clock = clock
        self._pending: deque[ev.Decision] = deque()
        self._status = RunStatus.RUNNING
        self._error: str | None = None
        """Why the run failed when no step is to blame: an executor that broke mid-run."""
        self._cancel = threading.Event()
        self._signalled = False
        """Set by a signal handler (``cancel_from_signal``): a plain flag, no lock."""
        self._flushed_at = 0.0
        self._actions = ActionState(records)
        self._launcher = Launcher(
            run,
            workspace,
            self._actions,
            log_dir,
            options,
            default_executor,
            # executors.base.starts_containers, without loading that module
            lambda name: bool(getattr(self.executors[name], "starts_containers", False)),
        )
        self._kept: set[str] = set()
        self._files = FileWork()
        self._preparing: dict[str, StepRunRecord] = {}
        """Step id -> its record while its inputs are hashed."""
        self._unwanted: set[str] = set()
        """Steps cancelled while their inputs were hashed: never to be submitted."""
        self._storing: dict[str, StepRunRecord] = {}
        """Step id -> its record while its outputs are stored."""
        self._writes: list[tuple[StepRunRecord, Write]] = []
        """Blob writes of stored outputs, made while the loop would wait anyway (the
        next steps are started first) and always before the records are written."""
        self._blobs_later = options.parallelism < _cores()
        """Whether small outputs' blobs are written after the next steps start: only with
        a core to spare beside the steps (``-j`` below the core count), where the blob's
        file creation runs while the next step does; with every core running a step it
        would only contend with the steps' own file creations (bench/README.md)."""
        self._unstorable = False
        """A blob write failed: the run fails."""
        self._ran_on: dict[str, dict[str, str]] = {}
        """Where a completed step ran, as its executor said: for its ``step-finished``."""

    # -- public ---------------------------------------------------------------
    def request_cancel(self) -> None:
        """From another thread (a server's worker): the loop notices within a quarter
        second. Not from a signal handler: it takes locks the interrupted code may hold."""
        self._cancel.set()
        self._files.wake()

    def cancel_from_signal(self) -> None:
        """From a signal handler: only a flag is set (no lock, no I/O, no executor call);
        the loop sees it at its next turn (a quarter second at most) and cancels."""
        self._signalled = True

    def execute(self) -> RunStatus:
        entries = {} if self.options.force else self.records.cache_entries(self._steps)
        self._cache = StepCache(entries, self.options.force)
        # the digest rows of the steps' files in a few queries, not one per file (and
        # none at all for files without a row: a cold run's inputs); outputs matter
        # only where steps may be served
        self.workspace.preload_digests(
            path
            for step in self._steps.values()
            for path in ((*step.inputs, *step.outputs) if entries else step.inputs)
        )
        self.reporter.run_started(self.run, self.plan)
        self._event(None, "run-started", {"steps": len(self._steps)})
        self._launcher.place_all(self.plan.steps)  # image pulls: before the loop, not in it
        self._pending.extend(self._scheduler.start())
        try:
            self._drain()
            while not self._scheduler.finished:
                if self._clock() - self._flushed_at >= _FLUSH_INTERVAL:
                    self._flush()
                if self._cancel.is_set() or self._signalled:
                    self._feed(ev.CancelRequested())
                    self._cancel.clear()
                    self._signalled = False
                self._turn()
                self._drain()
        finally:
            self._files.close()  # a store under way finishes: no output is left half-stored
            self.workspace.digests.flush()
        self._write_blobs()
        if self._unstorable:  # whatever the cancel left: a step's outputs were lost
            self._status = RunStatus.FAILED
        self.run.status = self._status
        self.run.ended_at, self.run.error = time.time(), self._error
        self._batch.run_updates[self.run.id] = (self._status, self.run.ended_at, self._error)
        self._event(None, "run-finished", {"status": str(self._status)})
        self._flush()
        self.reporter.run_finished(self.run, self._status)
        return self._status

    @property
    def leftovers(self) -> list[tuple[str, Handle]]:
        """(executor, handle) of steps a broken executor could not remove: to recover."""
        return self._active.leftovers

    # -- the loop ---------------------------------------------------------------
    def _turn(self) -> None:
        """Take in finished file work and completions: peek briefly, and make the records
        durable before a longer wait. While file work is under way executors are only
        peeked at; steps being prepared come first, so that quick ones reach a batch
        executor together, before its next poll."""
        self._write_blobs()  # the steps just started run meanwhile
        done = self._files.results(_PEEK) if self._preparing or not self._active else []
        if not done and not self._active:  # only file work is under way: wait on its queue
            self._flush()
            done = self._files.results(_POLL_CAP)
        elif not done:
            completions = self._active.poll(self._active.timeout(_PEEK))
            if not completions and not self._files.busy:
                self._flush()
                completions = self._active.poll(self._active.timeout(_POLL_CAP))
            self._active.check_deadlines()
            for active, waited in self._active.take_started():  # its timeout counts from now
                self._event(active.step.id, "step-running", {"waited_seconds": round(waited, 3)})
            self._fail_broken()
            for completion in completions:
                self._complete(completion)
            done = self._files.results(0.0)
        for event in done:
            self._file_done(event)

    def _offload(self, work: Callable[[], FileEvent], here: bool) -> None:
        """File work on the pool, or ``here`` in the loop when that is cheaper."""
        if here:
            self._file_done(work())
        else:
            self._files.submit(work)

    def _file_done(self, event: FileEvent) -> None:
        if isinstance(event, InputsHashed):
            self._prepared(event)
        else:
            self._stored(event)

    def _feed(self, event: ev.Event) -> None:
        self._pending.extend(self._scheduler.handle(event))
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            decision = self._pending.popleft()
            if isinstance(decision, ev.Launch):
                self._launch(self._steps[decision.step_id], decision.attempt)
            elif isinstance(decision, ev.Skip):
                self._skip(decision)
            elif isinstance(decision, ev.Cancel):
                if (
                    not self._active.cancel(decision.step_id)
                    and decision.step_id in self._preparing
                ):
                    self._unwanted.add(decision.step_id)
                self._fail_broken()
                # a step whose outputs are being stored ends as its completion said
            elif isinstance(decision, ev.Finished):
                self._status = decision.status

    def _flush(self) -> None:
        self._flushed_at = self._clock()
        self._write_blobs()  # no record names a blob before it is in the store
        if self._batch:
            self.records.write(self._batch)
            self._batch = WriteBatch()

    def _event(self, step_id: str | None, kind: str, data: dict[str, object]) -> None:
        self._batch.events.append(EventRecord(self.run.id, kind, time.time(), step_id, data))

    # -- launching ----------------------------------------------------------------
    def _launch(self, step: StepPlan, attempt: int) -> None:
        record = steprecords.launched(self.run.id, step, attempt)
        placed = self._launcher.begin(step, self._outputs, self._scheduler.failed_so_far())
        if isinstance(placed, Refused):
            self._fail(record, placed.reason, retryable=False)
            return
        self._preparing[step.id] = record
        seen = small_inputs(self.workspace, step)  # None: hashing may take long, off the loop
        self._offload(partial(hash_inputs, self._launcher, placed, seen), seen is not None)

    def _prepared(self, event: InputsHashed) -> None:
        step, record = self._steps[event.step_id], self._preparing.pop(event.step_id)
        prepared = event.result
        if step.id in self._unwanted:  # cancelled meanwhile: it ends as if it never started
            self._unwanted.discard(step.id)
            record.status, record.error = StepStatus.CANCELLED, "the run was cancelled"
            record.started_at, record.ended_at = None, time.time()
            self._finish(record, ev.StepCancelled(step.id))
            return
        if isinstance(prepared, Refused):
            self._fail(record, prepared.reason, retryable=False)
            return
        record.command = prepared.placement.command
        record.parts = prepared.parts
        record.fingerprint = prepared.fingerprint
        decision = self._cache.lookup(step, prepared.fingerprint)
        if isinstance(decision, CacheHit):
            self._write_blobs()  # the entry may be this run's
            # only outputs the restore would replace can hold a hand edit worth keeping
            replaced = [o.path for o in decision.entry.outputs if not self.workspace.holds(o)]
            if replaced:  # else the restore would write nothing: every output is held
                if not self._keep_edited(record, replaced):
                    return  # the step failed: its edited output is left alone
                decision = self._cache.restore(self.workspace, decision)
        if isinstance(decision, CacheHit):
            self._served(step, record, decision)
            return
        self._batch.inputs[(self.run.id, step.id)] = prepared.inputs
        self._submit(step, record, prepared, decision)

    def _served(self, step: StepPlan, record: StepRunRecord, hit: CacheHit) -> None:
        """The step's outputs came back from the store: it succeeded without running."""
        self._actions.restore(step, hit.entry.run_id)
        steprecords.served(record, hit.entry)
        self._outputs[step.id] = record.outputs
        self._batch.put_step_run(record)
        self.reporter.step_finished(record)
        self._pending.extend(self._scheduler.handle(ev.StepSucceeded(step.id, cached=True)))

    def _submit(
        self, step: StepPlan, record: StepRunRecord, prepared: Prepared, miss: CacheMiss
    ) -> None:
        log_path = self._launcher.log_path(step, record.attempt)
        record.log_path = str(log_path)
        if not self._keep_edited(record, step.outputs):
            return
        self.workspace.clear_outputs((*step.outputs, tracking_path(step.id)))
        invocation = self._launcher.invocation(step, record.attempt, prepared, log_path)
        executor = self.executors[step.executor or self.default_executor]
        try:
            handle = executor.submit(invocation)
        except OSError as exc:
            self._fail(record, f"cannot start the step: {exc}", retryable=False)
            return
        except ExecutorError as exc:
            self._fail(record, str(exc))
            return
        now = self._clock()
        queued_until = now + step.queue_timeout if step.queue_timeout else None
        self._active.add(
            Active(step, record, executor, handle, step.timeout, queued_until, submitted_at=now)
        )
        self._batch.put_step_run(record)
        started = self._launcher.started(
            step, record.attempt, handle, executor.name, miss.reason, prepared
        )
        self._event(step.id, "step-started", started)
        self.reporter.step_started(step.id, record.attempt)

    def _keep_edited(self, record: StepRunRecord, outputs: Iterable[str]) -> bool:
        """Copy aside declared outputs edited by hand before they are replaced; False
        (and the step failed) when a copy cannot be made."""
        fresh = [p for p in outputs if p not in self._kept]
        if self.options.keep_dir is None or not fresh:
            return True
        self._kept.update(fresh)  # a restore that fails and then the run: one copy, one warning
        keep_dir = self.options.keep_dir / self.run.id
        try:
            warnings = keep_edited(self.workspace, self.records, record.step_id, fresh, keep_dir)
        except KeepError as exc:
            self._fail(record, str(exc), retryable=False)
            return False
        for message in warnings:
            self._event(record.step_id, "warning", {"message": message})
            if self.options.on_warning is not None:
                self.options.on_warning(message)
        return True

    # -- completing -----------------------------------------------------------------
    def _complete(self, completion: Completion) -> None:
        active = self._active.pop(completion.key)
        if active is None:
            return  # not ours (or already completed): nothing to record
        record, step = active.record, active.step
        step_id = step.id
        record.ended_at = time.time()
        record.exit_code = completion.exit_code
        if completion.ran_on:
            self._ran_on[step_id] = dict(completion.ran_on)
        if active.stopped is not None:
            reason, retryable = active.stopped
            told = completion.message or ""  # what the executor knows of it (why it waited)
            if told.startswith("cancelled; "):
                reason += f"; {told.removeprefix('cancelled; ')}"
            self._fail(record, reason, retryable)
        elif completion.state == "cancelled":
            record.status = StepStatus.CANCELLED
            record.error = completion.message or "cancelled"
            self._finish(record, ev.StepCancelled(step_id))
        elif completion.state != "exited":
            self._fail(
                record,
                completion.message or f"the executor lost the step ({completion.state})",
                completion.retryable,
            )
        elif completion.exit_code != 0:
            self._fail(record, completion.message or f"exit code {completion.exit_code}")
        else:
            self._storing[step_id] = record
            here = inline(self.workspace, step.outputs)  # small: stored in the loop
            later = here and self._blobs_later
            self._offload(
                partial(store_outputs, self.workspace, step, record.log_path, later), here
            )

    def _stored(self, event: OutputsStored) -> None:
        step, record = self._steps[event.step_id], self._storing.pop(event.step_id)
        if event.error is not None:
            self._fail(record, event.error, event.retryable)
            return
        try:
            values = self._actions.finished(step, record.log_path)
        except BadOutput as exc:  # DataTorch fails a step whose output line is not JSON
            self._fail(record, f"step {step.id}: {exc}", retryable=False)
            return
        outputs = event.outputs
        self._writes.extend((record, write) for write in event.writes)
        record.status = StepStatus.SUCCEEDED
        record.outputs = outputs
        self._outputs[step.id] = outputs
        if values is not None:
            self._event(step.id, OUTPUTS_EVENT, {"outputs": values})
        if step.cache and record.fingerprint:
            entry = self._cache.add(record.fingerprint, step.id, self.run.id, outputs)
            self._batch.cache_entries.append(entry)
        self._finish(record, ev.StepSucceeded(step.id))

    def _write_blobs(self) -> None:
        """Make the blob writes left by stored outputs. One that fails (a full disk)
        fails the run: its step is recorded as failed without outputs, and the steps
        already started from its output end as the cancel leaves them."""
        while self._writes:
            record, write = self._writes.pop(0)
            try:
                write()
            except OutputError as exc:  # the same message as a write made at once
                self._unstored(record, str(exc))

    def _unstored(self, record: StepRunRecord, reason: str) -> None:
        record.status, record.error, record.outputs = StepStatus.FAILED, reason, []
        key = (record.run_id, record.step_id)
        self._batch.cache_entries = [
            e for e in self._batch.cache_entries if (e.run_id, e.step_id) != key
        ]
        self._cache.forget(record.step_id, record.run_id)
        self._writes = [(r, w) for r, w in self._writes if r is not record]
        self._batch.put_step_run(record)
        self._event(
            record.step_id, "step-finished", {"status": str(record.status), "error": reason}
        )
        self._error = self._error or reason
        self._unstorable = True
        if not self._scheduler.finished:
            self._feed(ev.CancelRequested())

    def _fail(self, record: StepRunRecord, reason: str, retryable: bool = True) -> None:
        record.status = StepStatus.FAILED
        record.error = reason
        record.ended_at = record.ended_at or time.time()
        self._finish(record, ev.StepFailed(record.step_id, retryable))

    def _fail_broken(self) -> None:
        """Fail the steps of an executor that broke (a lost pool): no retry on it."""
        for active, message in self._active.take_broken():
            self._error = self._error or message
            active.record.ended_at = time.time()
            self._fail(active.record, message, retryable=False)

    def _finish(self, record: StepRunRecord, event: ev.Event) -> None:
        self._batch.put_step_run(record)
        data: dict[str, object] = {
            "status": str(record.status),
            "exit_code": record.exit_code,
            "error": record.error,
        }
        if ran_on := self._ran_on.pop(record.step_id, None):
            data["ran_on"] = ran_on
        self._event(record.step_id, "step-finished", data)
        decisions = self._scheduler.handle(event)
        retry = next(
            (d for d in decisions if isinstance(d, ev.Launch) and d.step_id == record.step_id), None
        )
        if retry is None:
            self.reporter.step_finished(record)
        self._pending.extend(decisions)

    def _skip(self, decision: ev.Skip) -> None:
        record = steprecords.skipped(self.run.id, self._steps[decision.step_id], decision)
        self._batch.put_step_run(record)
        self.reporter.step_finished(record)
