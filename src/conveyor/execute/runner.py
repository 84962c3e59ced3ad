"""The runner loop: the only place that talks to executors, the store and the records.

It feeds the scheduler events and carries out its decisions. Records are written in
transactions that each cover whole loop turns, so a kill at any moment leaves a
consistent database: every step run is either recorded with its outputs or not at all.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import ExecutorError, StoreError
from conveyor.execute.actionstate import OUTPUTS_EVENT, ActionState
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
from conveyor.execute.images import ContainerRuntime, Placement, container_name, place_step
from conveyor.execute.reporting import Reporter
from conveyor.execute.runinfo import run_environment
from conveyor.execute.scheduler import Scheduler
from conveyor.execute.stepenv import step_environment
from conveyor.execute.workspace import (
    MissingInputError,
    MissingOutputError,
    OutputError,
    Workspace,
)
from conveyor.executors.base import Completion, Executor, Handle, Invocation
from conveyor.metadata.records import (
    CacheEntry,
    EventRecord,
    OutputRecord,
    RunRecord,
    StepRunRecord,
)
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.plan.fingerprint import fingerprint, step_parts
from conveyor.plan.model import ExecutionPlan, StepPlan

_POLL_CAP = 0.25  # seconds: how soon a cancel request or a timeout is noticed
# Records are written before the runner waits for anything longer than a peek, and at
# least this often while it is busy: a chain of quick steps does not pay a commit per
# step, and a kill loses at most the busy last moments (those steps run again).
_FLUSH_INTERVAL = 0.1
_PEEK = 0.02
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,\[\]-]")


@dataclass
class RunOptions:
    parallelism: int = 1
    force: bool = False
    environment_digest: str = ""
    containers_on_missing: str = "fail"
    """No container runtime is configured: ``fail`` image steps or run them on the ``host``."""
    plugins: Mapping[str, str] = field(default_factory=dict)
    """Plugin image (without tag) -> host command, for image steps without commands."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> value, resolved by the caller; never recorded."""
    secret_key: bytes = b""
    """The project's key for the HMACs that put secret values into fingerprints."""
    runtime: ContainerRuntime | None = None
    """Where image steps run (``[containers] runtime``); None: no runtime here."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Set for every step but not part of any fingerprint (a server's secrets)."""
    keep_dir: Path | None = None
    """Where copies of hand-edited outputs go before they are replaced (None: no check)."""
    on_warning: Callable[[str], None] | None = None


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
    ) -> None:
        self.run = run
        self.plan = plan
        self.executors = executors
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
        self._outputs: dict[str, list[OutputRecord]] = {}
        self._cache: dict[str, CacheEntry] = {}
        self._pending: deque[Decision] = deque()
        self._status = RunStatus.RUNNING
        self._cancel = threading.Event()
        self._flushed_at = 0.0
        self._actions = ActionState(records)
        self._kept: set[str] = set()

    # -- public ---------------------------------------------------------------
    def request_cancel(self) -> None:
        """Safe from a signal handler: the loop notices within a quarter second."""
        self._cancel.set()

    def execute(self) -> RunStatus:
        if not self.options.force:
            self._cache = self.records.cache_entries(self._steps)
        self.reporter.run_started(self.run, self.plan)
        self._event(None, "run-started", {"steps": len(self._steps)})
        self._pending.extend(self._scheduler.start())
        try:
            self._drain()
            while not self._scheduler.finished:
                if time.monotonic() - self._flushed_at >= _FLUSH_INTERVAL:
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
                active = self._active.get(decision.step_id)
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
            wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
        return wait

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for active in self._active.values():
            if active.deadline is not None and not active.timed_out and now >= active.deadline:
                active.timed_out = True
                active.executor.cancel([active.handle])

    def _flush(self) -> None:
        self._flushed_at = time.monotonic()
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
        placement = place_step(
            step,
            self.options.runtime,
            self.options.containers_on_missing,
            self.options.plugins,
            step.executor or self.default_executor,
        )
        command, refusal = placement.command, placement.refusal
        action = self._actions.prepare(step) if step.action is not None else None
        if isinstance(action, str):
            refusal, action = action, None
        if refusal is not None:
            self._fail(record, refusal, retryable=False)
            return
        try:
            inputs = self.workspace.resolve_inputs(step.inputs, step.optional_inputs)
        except MissingInputError as exc:
            self._fail(record, str(exc), retryable=False)
            return
        # declared inputs are keyed by content; a step that declares none is keyed on
        # everything its dependencies produced, so it still reruns when they change
        upstream = (
            {}
            if step.inputs
            else {d: {o.path: o.digest for o in self._outputs.get(d, [])} for d in step.needs}
        )
        record.command = command
        parts = step_parts(
            step,
            command=command,
            inputs={i.path: i.digest for i in inputs},
            upstream=upstream,
            environment=self.options.environment_digest,
            container=placement.key,
            action=action,
            secret_values=self.options.secrets,
            secret_key=self.options.secret_key,
            failed_so_far=self._scheduler.failed_so_far(),
        )
        record.parts = parts
        record.fingerprint = fingerprint(parts)
        miss = self._serve_from_cache(step, record)
        if miss is None:
            return
        self._batch.inputs[(self.run.id, step.id)] = inputs
        self._submit(step, record, tuple(i.path for i in inputs), miss, placement)

    def _serve_from_cache(self, step: StepPlan, record: StepRunRecord) -> str | None:
        """Restore the step's outputs from the store; else say why not (the cache miss)."""
        if not step.cache:
            return "cache-disabled"
        if self.options.force:
            return "forced"
        assert record.fingerprint is not None
        entry = self._cache.get(record.fingerprint)
        if entry is None or entry.step_id != step.id:
            return "new-fingerprint"
        if {o.path for o in entry.outputs} != set(step.outputs):
            return "outputs-differ"  # the entry cannot hand back what the step declares
        if not self._keep_edited(record, (o.path for o in entry.outputs)):
            return None  # the step failed: its edited output is left alone
        try:
            self.workspace.restore(entry.outputs)
        except StoreError:
            return "outputs-gone"  # a blob was collected or lost: run the step again
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
        return None

    def _submit(
        self,
        step: StepPlan,
        record: StepRunRecord,
        inputs: tuple[str, ...],
        miss: str,
        placement: Placement,
    ) -> None:
        log_path = self.log_dir / f"{_UNSAFE.sub('_', step.id)}.log"
        record.log_path = str(log_path)
        if record.attempt > 1:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"\n--- conveyor: attempt {record.attempt} ---\n")
        if not self._keep_edited(record, step.outputs):
            return
        self.workspace.clear_outputs(step.outputs)
        env = self._env(step, record.attempt)
        command, runtime = placement.command, self.options.runtime
        contained = placement.image_id is not None and runtime is not None
        if placement.image_id is not None and runtime is not None:
            name = container_name(self.run.id, step.id, record.attempt)
            command = runtime.wrap(
                placement.image_id, command, tuple(env), self.workspace.root, name, self.run.id
            )
        invocation = Invocation(
            key=f"{self.run.id}/{step.id}/{record.attempt}",
            command=command,
            env=env,
            workdir=self.workspace.root,
            log_path=log_path,
            inputs=inputs,
            outputs=step.outputs,
            resources=step.resources,
            timeout=step.timeout,
            options=dict(step.options),
            contained=contained,
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
        deadline = time.monotonic() + step.timeout if step.timeout else None
        self._active[step.id] = _Active(step, record, executor, handle, deadline)
        self._batch.put_step_run(record)
        started = {
            "attempt": record.attempt,
            "backend_id": handle.backend_id,
            "executor": executor.name,
            "cache_miss": miss,
        }
        if step.image is not None:  # provenance: the image, its ID and where it ran
            started.update(placement.provenance(step, self.options.runtime))
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

    def _env(self, step: StepPlan, attempt: int) -> dict[str, str]:
        env = {
            **self.options.extra_env,  # a server's secrets
            **run_environment(self.run),  # the run's facts; the step's own variables win
            **step_environment(
                step,
                self.run.id,
                str(self.workspace.root),
                attempt,
                self._scheduler.failed_so_far(),
            ),
        }
        for name, secret in step.secrets:
            env[name] = self.options.secrets[secret]
        env.update(self._actions.environment(step))
        return env

    # -- completing -----------------------------------------------------------------
    def _complete(self, completion: Completion) -> None:
        step_id = completion.key.split("/", 1)[1].rsplit("/", 1)[0]
        active = self._active.pop(step_id, None)
        if active is None:
            return
        record, step = active.record, active.step
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
            entry = CacheEntry(record.fingerprint, step.id, self.run.id, tuple(outputs))
            self._batch.cache_entries.append(entry)
            self._cache[record.fingerprint] = entry
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
