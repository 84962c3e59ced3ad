"""Shared-filesystem mode: jobs that run in the project directory, watched through
their job event log.

Chosen by ``filesystem = "shared"``, or by ``auto`` when every slot of the pool declares
this machine's ``FILESYSTEM_DOMAIN`` (the rule HTCondor itself applies to
``should_transfer_files = IF_NEEDED``). The scratch root (default: the project's
``.conveyor/htcondor``) must be on the shared path: the jobs write their stdout there,
and the schedd and shadows the run's one event log.

A client running as root that submits with another user's token (a server's service
account) hands its scratch to that user, who owns the jobs and writes these files.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from conveyor.errors import ExecutorError
from conveyor.executors.htcondor import runtime
from conveyor.executors.htcondor.description import OUT_DIR
from conveyor.executors.htcondor.events import EventLog, JobFact
from conveyor.executors.htcondor.jobs import MISSING_LIMIT, VANISHED, Job
from conveyor.executors.htcondor.pool import Pool
from conveyor.executors.htcondor.settings import HTCondorSettings
from conveyor.executors.htcondor.shared import COMMON_SHARED, EVENTS, shared_job_commands
from conveyor.executors.htcondor.staging import Scratch

LIVENESS_EVERY = 5.0
"""Seconds at least between two queries of the schedd in this mode: does it answer,
does it still hold the jobs whose end the log has not told."""
EVICTED = "HTCondor evicted the job (it would start it again from the beginning)"

Ended = tuple[Job, Literal["error", "lost", "unmatched"], str]
Completed = tuple[Job, JobFact]


def in_place_wanted(pool: Pool, filesystem: str) -> bool:
    """Whether jobs run in place: the setting, or for ``auto`` the pool's slots (every
    one declares this machine's filesystem domain)."""
    if filesystem != "auto":
        return filesystem == "shared"
    mine, theirs = pool.filesystem_domains()
    return bool(mine) and theirs == {mine}


class InPlace:
    def __init__(self, pool: Pool, settings: HTCondorSettings, workdir: Path) -> None:
        self._pool = pool
        self._settings = settings
        base = settings.scratch or str(workdir / ".conveyor" / "htcondor")
        self.scratch = Scratch(base)
        self._events: EventLog | None = None
        self._owner: tuple[int, int] | None = None
        self._next_check = 0.0

    def common(self) -> dict[str, str]:
        return {**COMMON_SHARED, "log": str(self._log().path)}

    def stage(
        self, batch: Sequence[Job], failed: Callable[[Job, Exception], None]
    ) -> list[tuple[Job, dict[str, str]]]:
        """Each job's own directory (its stdout, what it says of its interpreter, a
        Python pipeline's runtime); the jobs' submit commands."""
        self._log()
        staged = []
        for job in batch:
            try:
                job.iwd = self.scratch.job_dir(job.name)
                (job.iwd / OUT_DIR).mkdir()
                if runtime.wants_runtime(job.invocation):
                    runtime.ship(job.iwd)
                    env = runtime.runtime_env(
                        dict(job.invocation.env), str(job.iwd / runtime.DIRECTORY)
                    )
                    job.invocation = replace(job.invocation, env=env)
                self._hand_over(job.iwd, job.iwd / OUT_DIR)
                staged.append((job, shared_job_commands(job.invocation, job.iwd)))
            except (OSError, ExecutorError) as exc:  # this step's files or paths
                failed(job, exc)
        return staged

    def refresh(
        self,
        jobs: Sequence[Job],
        check_queue: Callable[[], set[str] | None],
        explain: Callable[[Job, float], str | None],
    ) -> tuple[list[Completed], list[Ended]]:
        """What the log says since the last read: jobs that completed (with their
        terminating fact) and jobs that ended otherwise."""
        now = time.monotonic()
        queued = None
        if now >= self._next_check:  # before the log: a job gone from it has logged its end
            self._next_check = now + max(self._settings.poll_interval, LIVENESS_EVERY)
            queued = check_queue()
        by_id = {job.job_id: job for job in jobs if job.job_id}
        completed: list[Completed] = []
        ended: list[Ended] = []
        done: set[str] = set()
        for fact in self._log().read():
            job = by_id.get(fact.job_id)
            if job is None or fact.job_id in done:
                continue
            if fact.kind == "started":
                job.started = True
                job.ad = {"LastRemoteHost": fact.text} if fact.text else job.ad
                continue
            done.add(fact.job_id)
            if fact.kind in ("exited", "signalled"):
                completed.append((job, fact))
            elif fact.kind == "held":
                ended.append((job, "error", f"HTCondor held the job: {fact.text}"))
            elif fact.kind == "aborted":
                ended.append((job, "lost", f"the job was removed from HTCondor: {fact.text}"))
            else:
                ended.append((job, "lost", EVICTED))
        for job_id, job in by_id.items():
            if job_id in done:
                continue
            if queued is not None:
                job.missing = 0 if job_id in queued else job.missing + 1
                if job.missing >= MISSING_LIMIT:
                    ended.append((job, "lost", VANISHED))
                    continue
            if not job.started and queued is not None:  # at the schedd's rate
                unmatched = explain(job, now)
                if unmatched is not None:
                    ended.append((job, "unmatched", unmatched))
        return completed, ended

    # -- internals --------------------------------------------------------------
    def _log(self) -> EventLog:
        if self._events is None:
            path = self.scratch.prepare() / EVENTS
            try:
                path.touch()
                self._hand_over(self.scratch.prepare(), path)
            except OSError as exc:
                raise ExecutorError(
                    f"cannot make the HTCondor job event log {path}: {exc}; set "
                    "[executors.htcondor] scratch to a writable directory the pool shares"
                ) from exc
            self._events = EventLog(self._pool, path)
        return self._events

    def _hand_over(self, *paths: Path) -> None:
        """As root: give the files to the user who owns the jobs."""
        if os.geteuid() != 0:
            return
        if self._owner is None:
            owner = self._pool.owner()
            try:
                entry = pwd.getpwnam(owner)
            except KeyError:
                raise ExecutorError(
                    f"HTCondor runs this client's jobs as {owner!r}, a user this machine "
                    "does not know: the pool cannot share its files; use filesystem = "
                    '"spool"'
                ) from None
            self._owner = (entry.pw_uid, entry.pw_gid)
        uid, gid = self._owner
        for path in paths:
            os.chown(path, uid, gid)
