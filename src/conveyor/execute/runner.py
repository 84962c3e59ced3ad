"""The runner loop: the only place that talks to executors, the store and the records.

It feeds the scheduler events and carries out its decisions. Records are written in
transactions that each cover whole loop turns, so a kill at any moment leaves a
consistent database: every step run is either recorded with its outputs or not at all.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import ExecutorError
from conveyor.execute.actionstate import OUTPUTS_EVENT, ActionState
from conveyor.execute.cache import CacheHit, CacheMiss, StepCache
from conveyor.execute.contained import starts_containers, with_containers
from conveyor.execute.edits import KeepError, keep_edited
from conveyor.execute.events import (
    Cancel,
    CancelRequested,
    Decision,
    Event,
    Finished,
    Launch,
    Skip,
    StepCancelled,
    StepFailed,
    StepSucceeded,
)
from conveyor.execute.launch import Launcher, Prepared, Refused, RunOptions
from conveyor.execute.reporting import Reporter
from conveyor.execute.scheduler import Scheduler
from conveyor.execute.workspace import MissingOutputError, OutputError, Workspace
from conveyor.executors.base import Completion, Executor, Handle
from conveyor.metadata.records import EventRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.plan.model import ExecutionPlan, StepPlan

__all__ = ["RunOptions", "Runner"]

_POLL_CAP = 0.25  # seconds: how soon a cancel request or a timeout is noticed
# Records are written before the runner waits for anything longer than a peek, and at
# least this often while it is busy: a chain of quick steps does not pay a commit per
# step, and a kill loses at most the busy last moments (those steps run again).
_FLUSH_INTERVAL = 0.1
_PEEK = 0.02


@dataclass
class _Active:
    step: StepPlan
    record: StepRunRecord
    executor: Executor
    handle: Handle
    deadline: float | None
    timed_out: bool = False


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
        self.executors = with_containers(executors, options.runtime)
        self.default_executor = default_executor
        self.workspace = workspace
        self.records = records
        self.log_dir = log_dir
        self.reporter = reporter
        self.options = options
        self._steps = {s.id: s for s in plan.steps}
        self._scheduler = Scheduler(plan, options.parallelism)
        self._batch = WriteBatch()
        self._active: dict[str, _Active] = {}
        """Handle key -> the step in flight (completions name the handle)."""
        self._outputs: dict[str, list[OutputRecord]] = {}
        self._cache = StepCache({}, options.force)
        self._handles: dict[str, str] = {}
        """Step id -> the key of its active handle (a Cancel names the step)."""
        self._clock = clock
        self._pending: deque[Decision] = deque()
        self._status = RunStatus.RUNNING
        self._cancel = threading.Event()
        self._flushed_at = 0.0
        self._actions = ActionState(records)
        self._launcher = Launcher(
            run,
            workspace,
            self._actions,
            log_dir,
            options,
            default_executor,
            lambda name: starts_containers(self.executors[name]),
        )
        self._kept: set[str] = set()

    # -- public ---------------------------------------------------------------
    def request_cancel(self) -> None:
        """Safe from a signal handler: the loop notices within a quarter second."""
        self._cancel.set()

    def execute(self) -> RunStatus:
        entries = {} if self.options.force else self.records.cache_entries(self._steps)
        self._cache = StepCache(entries, self.options.force)
        self.reporter.run_started(self.run, self.plan)
        self._event(None, "run-started", {"steps": len(self._steps)})
        self._launcher.place_all(self.plan.steps)  # image pulls: before the loop, not in it
        self._pending.extend(self._scheduler.start())
        try:
            self._drain()
            while not self._scheduler.finished:
                if self._clock() - self._flushed_at >= _FLUSH_INTERVAL:
                    self._flush()
                if self._cancel.is_set():
                    self._feed(CancelRequested())
                    self._cancel.clear()
                # peek briefly; before a longer wait, make the records durable
                completions = self._poll(min(_PEEK, self._poll_timeout()))
                if not completions:
                    self._flush()
                    completions = self._poll(self._poll_timeout())
                self._check_deadlines()
                for completion in completions:
                    self._complete(completion)
                self._drain()
        finally:
            self.workspace.digests.flush()
        self.run.status = self._status
        self.run.ended_at = time.time()
        self._batch.run_updates[self.run.id] = (self._status, self.run.ended_at, None)
        self._event(None, "run-finished", {"status": str(self._status)})
        self._flush()
        self.reporter.run_finished(self.run, self._status)
        return self._status

    # -- the loop ---------------------------------------------------------------
    def _feed(self, event: Event) -> None:
        self._pending.extend(self._scheduler.handle(event))
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            decision = self._pending.popleft()
            if isinstance(decision, Launch):
                self._launch(self._steps[decision.step_id], decision.attempt)
            elif isinstance(decision, Skip):
                self._skip(decision)
            elif isinstance(decision, Cancel):
                active = self._active.get(self._handles.get(decision.step_id, ""))
                if active is not None:
                    active.executor.cancel([active.handle])
            elif isinstance(decision, Finished):
                self._status = decision.status

    def _poll(self, timeout: float) -> list[Completion]:
        """Completions from every executor with work in flight (one waits, others peek)."""
        busy: dict[str, list[Handle]] = {}
        for active in self._active.values():
            busy.setdefault(active.executor.name, []).append(active.handle)
        completions: list[Completion] = []
        for index, (name, handles) in enumerate(busy.items()):
            wait = timeout if index == len(busy) - 1 and not completions else 0.0
            completions += self.executors[name].poll(handles, wait)
        return completions

    def _poll_timeout(self) -> float:
        deadlines = [a.deadline for a in self._active.values() if a.deadline and not a.timed_out]
        wait = _POLL_CAP
        if deadlines:
            wait = min(wait, max(0.0, min(deadlines) - self._clock()))
        return wait

    def _check_deadlines(self) -> None:
        now = self._clock()
        for active in self._active.values():
            if active.deadline is not None and not active.timed_out and now >= active.deadline:
                active.timed_out = True
                active.executor.cancel([active.handle])

    def _flush(self) -> None:
        self._flushed_at = self._clock()
        if self._batch:
            self.records.write(self._batch)
            self._batch = WriteBatch()

    def _event(self, step_id: str | None, kind: str, data: dict[str, object]) -> None:
        self._batch.events.append(EventRecord(self.run.id, kind, time.time(), step_id, data))

    # -- launching ----------------------------------------------------------------
    def _launch(self, step: StepPlan, attempt: int) -> None:
        record = StepRunRecord(
            run_id=self.run.id,
            step_id=step.id,
            job=step.job,
            status=StepStatus.RUNNING,
            attempt=attempt,
            started_at=time.time(),
            command=step.command,
        )
        prepared = self._launcher.prepare(step, self._outputs, self._scheduler.failed_so_far())
        if isinstance(prepared, Refused):
            self._fail(record, prepared.reason, retryable=False)
            return
        record.command = prepared.placement.command
        record.parts = prepared.parts
        record.fingerprint = prepared.fingerprint
        decision = self._cache.lookup(step, prepared.fingerprint)
        if isinstance(decision, CacheHit):
            # only outputs the restore would replace can hold a hand edit worth keeping
            replaced = [o.path for o in decision.entry.outputs if not self.workspace.holds(o)]
            if replaced and not self._keep_edited(record, replaced):
                return  # the step failed: its edited output is left alone
            decision = self._cache.restore(self.workspace, decision)
        if isinstance(decision, CacheHit):
            self._served(step, record, decision)
            return
        self._batch.inputs[(self.run.id, step.id)] = prepared.inputs
        self._submit(step, record, prepared, decision)

    def _served(self, step: StepPlan, record: StepRunRecord, hit: CacheHit) -> None:
        """The step's outputs came back from the store: it succeeded without running."""
        entry = hit.entry
        self._actions.restore(step, entry.run_id)
        record.status = StepStatus.SUCCEEDED
        record.cached = True
        record.cached_from = entry.run_id
        record.attempt = 0
        record.ended_at = record.started_at
        record.exit_code = 0
        record.outputs = list(entry.outputs)
        self._outputs[step.id] = record.outputs
        self._batch.put_step_run(record)
        self.reporter.step_finished(record)
        self._pending.extend(self._scheduler.handle(StepSucceeded(step.id, cached=True)))

    def _submit(
        self, step: StepPlan, record: StepRunRecord, prepared: Prepared, miss: CacheMiss
    ) -> None:
        log_path = self._launcher.log_path(step, record.attempt)
        record.log_path = str(log_path)
        if not self._keep_edited(record, step.outputs):
            return
        self.workspace.clear_outputs(step.outputs)
        failed_so_far = self._scheduler.failed_so_far()
        invocation = self._launcher.invocation(
            step, record.attempt, prepared, log_path, failed_so_far
        )
        executor = self.executors[step.executor or self.default_executor]
        try:
            handle = executor.submit(invocation)
        except OSError as exc:
            self._fail(record, f"cannot start the step: {exc}", retryable=False)
            return
        except ExecutorError as exc:
            self._fail(record, str(exc))
            return
        deadline = self._clock() + step.timeout if step.timeout else None
        self._active[handle.key] = _Active(step, record, executor, handle, deadline)
        self._handles[step.id] = handle.key
        self._batch.put_step_run(record)
        started = {
            "attempt": record.attempt,
            "backend_id": handle.backend_id,
            "executor": executor.name,
            "cache_miss": miss.reason,
        }
        if step.image is not None:  # provenance: the image, its ID and where it ran
            started.update(prepared.placement.provenance(step, self.options.runtime))
        if step.action is not None:
            started.update({"action": step.action, "action_commit": step.action_commit})
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
        active = self._active.pop(completion.key, None)
        if active is None:
            return  # not ours (or already completed): nothing to record
        record, step = active.record, active.step
        self._handles.pop(step.id, None)
        step_id = step.id
        record.ended_at = time.time()
        record.exit_code = completion.exit_code
        if active.timed_out:
            self._fail(record, f"timed out after {step.timeout:g}s", retryable=True)
        elif completion.state == "cancelled":
            record.status = StepStatus.CANCELLED
            record.error = completion.message or "cancelled"
            self._finish(record, StepCancelled(step_id))
        elif completion.state != "exited":
            self._fail(
                record, completion.message or f"the executor lost the step ({completion.state})"
            )
        elif completion.exit_code != 0:
            self._fail(record, completion.message or f"exit code {completion.exit_code}")
        else:
            self._succeed(step, record)

    def _succeed(self, step: StepPlan, record: StepRunRecord) -> None:
        try:
            outputs = self.workspace.store_outputs(step.outputs)
        except MissingOutputError as exc:
            self._fail(record, f"the step did not write its declared output {exc}")
            return
        except OutputError as exc:  # a link out of the workspace, an OS error: this step only
            self._fail(record, str(exc), retryable=False)
            return
        record.status = StepStatus.SUCCEEDED
        record.outputs = outputs
        self._outputs[step.id] = outputs
        values = self._actions.finished(step, record.log_path)
        if values is not None:
            self._event(step.id, OUTPUTS_EVENT, {"outputs": values})
        if step.cache and record.fingerprint:
            entry = self._cache.add(record.fingerprint, step.id, self.run.id, outputs)
            self._batch.cache_entries.append(entry)
        self._finish(record, StepSucceeded(step.id))

    def _fail(self, record: StepRunRecord, reason: str, retryable: bool = True) -> None:
        record.status = StepStatus.FAILED
        record.error = reason
        record.ended_at = record.ended_at or time.time()
        self._finish(record, StepFailed(record.step_id, retryable))

    def _finish(self, record: StepRunRecord, event: Event) -> None:
        self._batch.put_step_run(record)
        self._event(
            record.step_id,
            "step-finished",
            {"status": str(record.status), "exit_code": record.exit_code, "error": record.error},
        )
        decisions = self._scheduler.handle(event)
        retry = next(
            (d for d in decisions if isinstance(d, Launch) and d.step_id == record.step_id), None
        )
        if retry is None:
            self.reporter.step_finished(record)
        self._pending.extend(decisions)

    def _skip(self, decision: Skip) -> None:
        step = self._steps[decision.step_id]
        now = time.time()
        record = StepRunRecord(
            run_id=self.run.id,
            step_id=step.id,
            job=step.job,
            status=decision.status,
            command=step.command,
            ended_at=now,
            error=decision.reason,
        )
        self._batch.put_step_run(record)
        self.reporter.step_finished(record)
