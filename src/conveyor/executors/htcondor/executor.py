"""Run invocations as HTCondor jobs, batched into clusters, with explicit file transfer.

``submit`` only records the invocation. The next ``poll`` stages every recorded
invocation into a private scratch directory and submits them together (one cluster per
set of alike jobs) in spool mode, so nothing is shared with the pool. Jobs are then
watched with one schedd query per ``poll_interval`` at most; completed jobs are
retrieved and removed in batches, their declared outputs moved into the project and
their output appended to the step's log.

In shared-filesystem mode (``filesystem = "shared"``, or ``auto`` and a pool that
declares this machine's filesystem domain) jobs run in the project directory, nothing
is spooled or transferred, and news comes from the run's job event log (``inplace.py``);
the schedd is asked only every ``LIVENESS_EVERY`` seconds whether it still answers and
still holds the jobs the log has not ended.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.executors.base import (
    UNBOUNDED,
    Capacity,
    Completion,
    EndState,
    Handle,
    Invocation,
    Recovered,
)
from conveyor.executors.htcondor.description import (
    COMMON,
    check_outputs,
    classad_string,
    job_commands,
    key_label,
    plan_clusters,
    top_outputs,
)
from conveyor.executors.htcondor.events import JobFact
from conveyor.executors.htcondor.inplace import InPlace, in_place_wanted
from conveyor.executors.htcondor.jobs import MISSING_LIMIT, VANISHED, Ending, Job, ran_on
from conveyor.executors.htcondor.pool import Pool
from conveyor.executors.htcondor.runtime import runtime_env, wants_runtime
from conveyor.executors.htcondor.settings import HTCondorSettings
from conveyor.executors.htcondor.staging import (
    Scratch,
    append_log,
    deliver,
    interpreter,
    stage,
)

# JobStatus values, and the hold code of a job whose input files are still uploading
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
SPOOLING_HOLD = 16

COLLECT_DELAY = 1.0
"""Seconds a finished job may wait while others run, so that retrieval goes in batches:
each retrieve or remove call costs the schedd far more than one more job in it."""
EVENTS_EVERY = 0.1
"""Seconds between two reads of the job event log in shared-filesystem mode."""
CAPACITY_EVERY = 5.0
"""Seconds at least between two counts of the pool's slots (a collector query)."""
_BACKEND_ID = re.compile(r"htcondor:([0-9a-f]{32})/j[0-9]+")
"""A handle's ``backend_id``: the executor instance's id (``ConveyorExecutorId`` of its
jobs) and the job's name. Recorded before the job reaches the schedd, so no cluster id."""


class HTCondorExecutor:
    name = "htcondor"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = HTCondorSettings.from_mapping(settings)
        self.default_parallelism = self.settings.parallelism
        self._id = uuid.uuid4().hex
        self._pool = Pool(self.settings)
        self._scratch = Scratch(self.settings.scratch)
        self._jobs: dict[str, Job] = {}
        self._buffer: list[Job] = []
        self._ready: dict[str, Completion] = {}
        self._next_query = 0.0
        self._unreachable_since: float | None = None
        self._count = 0
        self._spooling: set[str] = set()
        """Clusters still held for their upload: when they turn idle, ask the schedd to
        negotiate at once rather than at its next cycle."""
        self._retrieved: list[str] = []
        """Jobs whose output is home: removed from the queue on the next turn (or close),
        so that the runner has their completions first."""
        self._capacity = UNBOUNDED
        self._capacity_at = float("-inf")
        self._filesystem = self.settings.filesystem
        """The mode: ``auto`` until the first batch decides."""
        self._in_place: InPlace | None = None
        """Shared-filesystem mode, once the first batch chose it."""

    # -- the contract ---------------------------------------------------------------
    def submit(self, invocation: Invocation) -> Handle:
        check_outputs(invocation.outputs)
        job_commands(invocation, "", False)  # a bad option or variable fails this step now
        self._count += 1
        job = Job(invocation, f"j{self._count}", top_outputs(invocation.outputs))
        self._jobs[invocation.key] = job
        self._buffer.append(job)
        return Handle(invocation.key, f"htcondor:{self._id}/{job.name}")

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        deadline = time.monotonic() + max(0.0, timeout)
        self._flush()
        while True:
            if self._submitted() and time.monotonic() >= self._next_query:
                self._refresh()
            done = [self._ready.pop(h.key) for h in handles if h.key in self._ready]
            waiting = any(h.key in self._jobs for h in handles)
            now = time.monotonic()
            if done or not waiting or now >= deadline:
                return done
            wake = min(deadline, self._next_query) if self._submitted() else deadline
            time.sleep(max(0.0, wake - now))

    def cancel(self, handles: Sequence[Handle]) -> None:
        """Remove the jobs; a started one's output so far (streamed to the schedd's
        spool) is fetched first, for its log: a timed-out step shows how far it got."""
        jobs = [job for h in handles if (job := self._jobs.get(h.key)) is not None]
        queued = [job for job in jobs if job.job_id is not None]
        for job in jobs:
            if job.job_id is None:
                self._buffer.remove(job)
        started = [j.job_id for j in queued if j.started and j.job_id and j.result is None]
        failures = self._pool.retrieve_partial(started) if self._in_place is None else {}
        self._pool.remove([j.job_id for j in queued if j.job_id], "cancelled by conveyor")
        for job in jobs:
            message = f"cancelled; {job.unmatched}" if job.unmatched else "cancelled"
            partial = job.job_id in started and job.job_id not in failures
            self._finish(job, "cancelled", message=message, note="cancelled", partial=partial)

    def started(self, handles: Sequence[Handle]) -> list[str]:
        """The jobs HTCondor has started (Running, or run and done), as of the last query."""
        return [h.key for h in handles if (job := self._jobs.get(h.key)) and job.started]

    def capacity(self) -> Capacity:
        """The pool's slots, counted in the collector at most once per ``poll_interval``
        (and ``CAPACITY_EVERY``); unbounded until the pool is contacted."""
        now = time.monotonic()
        every = max(self.settings.poll_interval, CAPACITY_EVERY)
        if self._pool.connected and now - self._capacity_at >= every:
            self._capacity_at = now
            try:
                count = len(self._pool.slots(["Name"]))
            except ExecutorError:
                return self._capacity  # a busy collector: the last answer, not a failed run
            why = f"the HTCondor pool at {self.settings.where()} lists no slot (no machine)"
            self._capacity = Capacity(count, why, self.settings.no_capacity_timeout)
        return self._capacity

    def close(self) -> None:
        try:
            if self._submitted() or self._retrieved:
                self._pool.remove(f"ConveyorExecutorId == {classad_string(self._id)}")
        finally:
            self._buffer.clear()
            self._jobs.clear()
            self._ready.clear()
            self._scratch.cleanup()

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        """``condor_rm`` the jobs of a dead process, found by its executor id and the
        invocation key; an unreachable schedd is an ExecutorError (nothing was done)."""
        done = []
        for handle in handles:
            found = _BACKEND_ID.fullmatch(handle.backend_id)
            if found is None:
                done.append(Recovered(handle.key, False, "not an HTCondor job of Conveyor"))
                continue
            self._pool.connect()
            constraint = (
                f"ConveyorExecutorId == {classad_string(found[1])} && "
                f"ConveyorKey == {classad_string(key_label(handle.key))} && "
                f"JobStatus != {REMOVED}"
            )
            ads = self._pool.query(constraint)
            if not ads:
                done.append(Recovered(handle.key, False, "the job is no longer queued"))
                continue
            failure = self._pool.remove(constraint, "its conveyor process ended mid-run")
            ids = ", ".join(f"{ad['ClusterId']}.{ad['ProcId']}" for ad in ads)
            if failure is None:
                done.append(Recovered(handle.key, True, f"removed HTCondor job {ids}"))
            else:
                done.append(Recovered(handle.key, False, f"cannot remove job {ids}: {failure}"))
        return done

    # -- submitting -----------------------------------------------------------------
    def _flush(self) -> None:
        if not self._buffer:
            return
        self._pool.connect()  # an unreachable pool is one ExecutorError, for the run
        batch, self._buffer = self._buffer, []
        if self._filesystem == "auto":  # asked once, at the first batch
            shared = in_place_wanted(self._pool, self._filesystem)
            self._filesystem = "shared" if shared else "spool"
        if self._filesystem == "shared" and self._in_place is None:
            self._in_place = InPlace(self._pool, self.settings, batch[0].invocation.workdir)
            self._scratch = self._in_place.scratch
        self._scratch.prepare()
        if self._in_place is not None:
            self._submit(self._in_place.stage(batch, self._finish_staging), in_place=True)
            return
        staged: list[tuple[Job, dict[str, str]]] = []
        for job in batch:
            try:
                job.iwd = self._scratch.job_dir(job.name)
                if wants_runtime(job.invocation):  # the pool may have no Conveyor: send it
                    env = runtime_env(dict(job.invocation.env))
                    job.invocation = replace(job.invocation, env=env)
                inputs, notes = stage(job.invocation, job.iwd)
            except OSError as exc:
                self._finish_staging(job, exc)
                continue
            job.notes += notes
            staged.append((job, job_commands(job.invocation, str(job.iwd), inputs)))
        self._submit(staged, in_place=False)

    def _finish_staging(self, job: Job, exc: Exception) -> None:
        message = f"cannot stage the step's files for HTCondor: {exc}"
        self._finish(job, "error", message=message, note=message)

    def _submit(self, staged: Sequence[tuple[Job, dict[str, str]]], *, in_place: bool) -> None:
        """Submit staged jobs, one cluster per set of alike ones."""
        keyed = [(job.invocation.key, commands) for job, commands in staged]
        if in_place and self._in_place is not None:
            common = self._in_place.common()
        else:
            common = dict(COMMON)
        common["+ConveyorExecutorId"] = classad_string(self._id)
        for plan in plan_clusters(keyed, common):
            try:
                if in_place:
                    cluster, warnings = self._pool.submit_in_place(plan)
                else:
                    cluster, warnings = self._pool.submit(plan)
            except ExecutorError as exc:
                for key in plan.members:
                    self._finish(self._jobs[key], "error", message=str(exc), note=str(exc))
                continue
            if not in_place:
                self._spooling.add(str(cluster))
            for proc, key in enumerate(plan.members):
                self._jobs[key].job_id = f"{cluster}.{proc}"
                self._jobs[key].queued_at = time.monotonic()
                self._jobs[key].notes += warnings
        # the jobs need the schedd and a negotiation cycle before there is news
        self._next_query = max(self._next_query, time.monotonic() + self.settings.poll_interval)

    def _submitted(self) -> bool:
        return any(job.job_id is not None for job in self._jobs.values())

    # -- watching -------------------------------------------------------------------
    def _refresh(self) -> None:
        if self._in_place is not None:
            self._refresh_in_place(self._in_place)
            return
        if self._retrieved:
            self._pool.remove(self._retrieved, "done: output retrieved by conveyor")
            self._retrieved = []
        now = time.monotonic()
        self._next_query = now + self.settings.poll_interval
        try:
            ads = self._pool.query(f"ConveyorExecutorId == {classad_string(self._id)}")
        except ExecutorError as exc:
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since < self.settings.unreachable_grace:
                return  # a schedd restarting: try again at the next interval
            raise ExecutorError(
                f"lost contact with the HTCondor schedd at {self.settings.where()} for "
                f"{self.settings.unreachable_grace:g}s: {exc}"
            ) from exc
        self._unreachable_since = None
        by_id = {f"{ad['ClusterId']}.{ad['ProcId']}": ad for ad in ads}
        ended: list[tuple[Job, Ending, str]] = []  # (job, state, why)
        for job in list(self._jobs.values()):
            if job.job_id is None:
                continue
            ad = by_id.get(job.job_id)
            if ad is None:
                job.missing += 1
                if job.missing >= MISSING_LIMIT:
                    ended.append((job, "lost", VANISHED))
                continue
            job.missing = 0
            verdict = self._judge(job, ad, now)
            if verdict is not None:
                ended.append((job, *verdict))
        self._end(ended)
        released = {str(ad["ClusterId"]) for ad in ads if ad["JobStatus"] == IDLE}
        if released & self._spooling:
            self._spooling -= released
            self._pool.reschedule()
        completed = [job for job in self._jobs.values() if job.result is not None]
        running = any(j.job_id and j.result is None for j in self._jobs.values())
        if completed and (
            not running or now - min(j.completed_at for j in completed) >= COLLECT_DELAY
        ):
            self._collect(completed)

    def _refresh_in_place(self, in_place: InPlace) -> None:
        # a read of the local event log, not a query: the schedd's bound does not apply
        self._next_query = time.monotonic() + min(self.settings.poll_interval, EVENTS_EVERY)
        completed, ended = in_place.refresh(
            self._live_jobs(), self._check_queue, self.explain_waiting
        )
        for job, fact in completed:
            self._complete_in_place(job, fact)
        self._end(ended)

    def _live_jobs(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.job_id is not None]

    def _check_queue(self) -> set[str] | None:
        """The ids of this executor's jobs the schedd holds; None when it does not answer
        (an ExecutorError once that lasted ``unreachable_grace``)."""
        now = time.monotonic()
        try:
            ads = self._pool.query(f"ConveyorExecutorId == {classad_string(self._id)}")
        except ExecutorError as exc:
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since < self.settings.unreachable_grace:
                return None
            raise ExecutorError(
                f"lost contact with the HTCondor schedd at {self.settings.where()} for "
                f"{self.settings.unreachable_grace:g}s: {exc}"
            ) from exc
        self._unreachable_since = None
        return {f"{ad['ClusterId']}.{ad['ProcId']}" for ad in ads}

    def explain_waiting(self, job: Job, now: float) -> str | None:
        """Say in its log why no machine matches a job idle for ``no_match_after``; the
        error once none has for ``no_capacity_timeout`` (None while one may)."""
        self._explain(job, now)
        return self._still_unmatched(job, now)

    def _judge(self, job: Job, ad: dict[str, Any], now: float) -> tuple[Ending, str] | None:
        """How a queued job ended, from its ad; None while it waits or runs (a completed
        one is kept for the next batch retrieval)."""
        job.ad = ad
        status = ad["JobStatus"]
        job.started = job.started or status in (RUNNING, COMPLETED) or bool(ad["NumJobStarts"])
        if status == IDLE and not job.started:
            self._explain(job, now)
            unmatched = self._still_unmatched(job, now)
            return None if unmatched is None else ("unmatched", unmatched)
        if status == COMPLETED:
            if job.result is None:
                job.result, job.completed_at = ad, now
        elif status == HELD and ad["HoldReasonCode"] != SPOOLING_HOLD:
            return "error", f"HTCondor held the job: {ad['HoldReason']}"
        elif status == REMOVED:
            reason = ad["RemoveReason"] or "no reason given"
            return "lost", f"the job was removed from HTCondor: {reason}"
        elif (ad["NumJobStarts"] or 0) > 1 or (status == IDLE and ad["NumJobStarts"]):
            return "lost", "HTCondor evicted the job (it would start it again from the beginning)"
        return None

    def _explain(self, job: Job, now: float) -> None:
        """Once a job has been idle for ``no_match_after``: ask why no machine matches it,
        and say so in the step's log at once (a step that waits for a slot says nothing)."""
        if job.asked or now - job.queued_at < self.settings.no_match_after or not job.job_id:
            return
        job.asked = True
        try:
            job.unmatched = self._pool.explain(job.job_id)
        except ExecutorError as exc:
            job.notes.append(f"cannot tell why HTCondor job {job.job_id} waits: {exc}")
            return
        if job.unmatched is not None:
            line = f"HTCondor job {job.job_id} waited {now - job.queued_at:.0f}s: {job.unmatched}"
            with contextlib.suppress(OSError):
                append_log(job.invocation, None, [line])

    def _still_unmatched(self, job: Job, now: float) -> str | None:
        """The error of a job no machine has matched for ``no_capacity_timeout`` (asked
        again then: a machine may have joined the pool since); None while it may match."""
        waited = now - job.queued_at
        if job.unmatched is None or waited < self.settings.no_capacity_timeout or not job.job_id:
            return None
        try:
            job.unmatched = self._pool.explain(job.job_id)
        except ExecutorError:
            return None  # the schedd or collector is busy: ask at the next query
        if job.unmatched is None:
            return None
        return (
            f"HTCondor had no machine for the job for {waited:.0f}s (no_capacity_timeout "
            f"{self.settings.no_capacity_timeout:g}s): {job.unmatched}"
        )

    def _collect(self, completed: list[Job]) -> None:
        """Retrieve finished jobs in one go, remove them, hand their results over."""
        ids = [job.job_id for job in completed if job.job_id]
        failures = self._pool.retrieve(ids)
        self._retrieved += ids
        for job in completed:
            ad = job.result or {}
            failure = failures.get(job.job_id or "")
            if failure is not None:
                why = f"cannot retrieve the job's output from HTCondor: {failure}"
                self._finish(job, "error", message=why, note=why)
                continue
            try:
                assert job.iwd is not None
                deliver(job.invocation, job.iwd, job.outputs)
            except OSError as exc:
                why = f"cannot move the step's outputs into the project: {exc}"
                self._finish(job, "error", message=why, note=why)
                continue
            host = str(ad.get("LastRemoteHost") or "a machine of the pool")
            job.notes.append(f"ran as HTCondor job {job.job_id} on {host}")
            job.ad = ad
            job.interpreter = interpreter(job.iwd)
            if ad.get("ExitBySignal"):
                signal = int(ad["ExitSignal"] or 0)
                self._finish(job, "exited", 128 + signal, f"killed by signal {signal}")
            elif ad.get("ExitCode") is None:
                self._finish(job, "error", message="HTCondor reported no exit code")
            else:
                self._finish(job, "exited", int(ad["ExitCode"]))

    def _complete_in_place(self, job: Job, fact: JobFact) -> None:
        slot = str((job.ad or {}).get("LastRemoteHost") or "a machine of the pool")
        job.notes.append(f"ran as HTCondor job {job.job_id} on {slot}")
        if job.iwd is not None:
            job.interpreter = interpreter(job.iwd)
        if fact.kind == "signalled":
            signal = fact.value or 0
            self._finish(job, "exited", 128 + signal, f"killed by signal {signal}")
        elif fact.value is None:
            self._finish(job, "error", message="HTCondor reported no exit code")
        else:
            self._finish(job, "exited", fact.value)

    def _end(self, ended: Sequence[tuple[Job, Ending, str]]) -> None:
        """Held, removed, evicted, unmatched or vanished jobs: keep what output there is
        (streamed to the spool as they ran), remove them. One that no machine matches
        fails without retry: another attempt would wait for the same missing machine."""
        started = [j.job_id for j, state, _ in ended if state != "lost" and j.started and j.job_id]
        # in place, the output so far is already in the job's own directory
        failures = self._pool.retrieve_partial(started) if self._in_place is None else {}
        self._pool.remove([j.job_id for j, _, _ in ended if j.job_id], "ended by conveyor")
        for job, state, why in ended:
            partial = job.job_id in started and job.job_id not in failures
            if state == "unmatched":
                self._finish(job, "error", message=why, note=why, retryable=False)
            else:
                self._finish(job, state, message=why, note=why, partial=partial)

    def _finish(
        self,
        job: Job,
        state: EndState,
        exit_code: int | None = None,
        message: str | None = None,
        note: str | None = None,
        *,
        partial: bool = True,
        retryable: bool = True,
    ) -> None:
        """Hand the completion over; ``partial``: the job's output in its scratch dir
        (retrieved) goes into the step's log before the notes."""
        key = job.invocation.key
        self._jobs.pop(key, None)
        notes = [*job.notes, *([note] if note else [])]
        with contextlib.suppress(OSError):  # the completion matters more than the log
            append_log(job.invocation, job.iwd if partial else None, notes)
        if job.iwd is not None:
            shutil.rmtree(job.iwd, ignore_errors=True)
        where = ran_on(job) if job.started else None
        self._ready[key] = Completion(key, state, exit_code, message, retryable, where)
