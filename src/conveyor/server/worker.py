"""Workers: take queued runs, run them with the SDK, commit results back to git.

A worker claims one run at a time (see ``db.queue``). Inside ``conveyor server`` the
workers are threads woken at once when a push queues a run; ``conveyor worker`` runs
the same loop in its own process against the same database and data directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import ConveyorError
from conveyor.execute.runner import Runner
from conveyor.metadata.records import EventRecord, StepRunRecord
from conveyor.metadata.repository import WriteBatch
from conveyor.sdk.checkout import Checkout, checkout_plan, committed_settings, run_checkout
from conveyor.sdk.project import CACHE_KEY_FILE, cache_key_at, mark_interrupted
from conveyor.sdk.runfacts import server_facts, server_payload
from conveyor.sdk.running import RunHooks, RunRequest
from conveyor.sdk.settings import Settings
from conveyor.server.config import ServerConfig
from conveyor.server.db.database import ServerDatabase
from conveyor.server.db.queue import HEARTBEAT, QueuedRun
from conveyor.server.masking import Masker, mask_file
from conveyor.server.results import commit_results, result_files
from conveyor.server.retention import apply_retention
from conveyor.server.sandbox import sandbox_setting
from conveyor.vcs.git import add_worktree, remove_worktree

log = logging.getLogger("conveyor.server")

SecretsFor = Callable[[str], dict[str, str]]
CANCEL_CHECK = 0.5  # seconds between looks for cancel requests of running runs
RESUME = "resume:"  # the trigger of a resumed run: ``resume:<original run id>``


@dataclasses.dataclass(eq=False)
class Worker:
    """One run at a time; ``serve`` loops until ``stop`` is set."""

    config: ServerConfig
    db: ServerDatabase
    name: str
    wake: threading.Event
    secrets_for: SecretsFor | None = None
    poll: float = 0.5
    active: dict[str, Runner | None] = dataclasses.field(default_factory=dict, init=False)
    stopping: bool = dataclasses.field(default=False, init=False)

    def serve(self, stop: threading.Event) -> None:
        _warm_up()
        while not stop.is_set():
            try:
                queued = self.db.queue.claim(self.name)
            except Exception:  # the database went away for a moment: try again
                log.exception("worker %s could not claim a run", self.name)
                queued = None
            if queued is None:
                self.wake.wait(self.poll)
                self.wake.clear()
                continue
            self.execute(queued)

    def execute(self, queued: QueuedRun) -> None:
        """Run one claimed run to its end; never raises."""
        self.active[queued.id] = None
        self._tell_forge(queued.id, RunStatus.RUNNING)
        try:
            done = self._execute(queued)
            if done is None:  # back in the queue: its pipeline has `concurrency` runs
                return
            status, error, result = done
        except Exception as exc:  # a bug must not kill the worker: the run fails instead
            log.exception("run %s failed inside the server", queued.id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            status, result = RunStatus.FAILED, None
        finally:
            self.active.pop(queued.id, None)
        if self.stopping and status == RunStatus.CANCELLED:
            status, error = self._interrupted(queued)
        self.db.queue.finish(queued.id, status, error, result)
        self._tell_forge(queued.id, status)
        try:  # the project's retention setting, applied on the server's own
            apply_retention(self.config, self.db, queued.project)
        except Exception:  # retention must never fail a run or stop the worker
            log.exception("retention of project %s failed", queued.project)

    def _tell_forge(self, run_id: str, status: RunStatus) -> None:
        """Owe the forge of a webhook's run its new status, naming the failed steps (not
        the run's error: it may name the server's paths); never fails the run."""
        from conveyor.server.db.statuses import Statuses
        from conveyor.server.forge import follow_run

        try:
            failed = []
            if status == RunStatus.FAILED:
                records = self.db.records.step_runs(run_id)
                failed = [r.step_id for r in records if r.status == StepStatus.FAILED]
            follow_run(Statuses(self.db.engine), run_id, status, failed)
        except Exception:
            log.exception("could not record the forge status of run %s", run_id)

    def _interrupted(self, queued: QueuedRun) -> tuple[RunStatus, str]:
        """A run the server's stop cancelled was interrupted (it can be resumed): its
        record says so too, not only the queue."""
        reason = "the server stopped mid-run; resume it"
        record = self.db.records.get_run(queued.id)
        if record is not None:
            executors = run_executors(self.config, self.db, queued.project, queued.id)
            mark_interrupted(self.db.records, record, reason, executors)
        return RunStatus.INTERRUPTED, f"interrupted: {reason}"

    def shutdown(self) -> None:
        """Stop the run in progress (it ends ``interrupted`` and can be resumed)."""
        self.stopping = True
        for runner in list(self.active.values()):
            if runner is not None:
                runner.request_cancel()

    def _admitted(
        self, queued: QueuedRun, checkout: Checkout, settings: Settings, request: RunRequest
    ) -> bool:
        """Whether the run may start now (its pipeline's ``concurrency``); a file that does
        not compile is admitted, and fails in the run as it would anyway."""
        store = self.config.open_store()
        try:
            plan = checkout_plan(checkout, settings, store, self.db.records, request)
        except ConveyorError:
            return True
        return self.db.queue.admit(queued.id, plan.pipeline, plan.concurrency)

    def _execute(self, queued: QueuedRun) -> tuple[RunStatus, str | None, str | None] | None:
        project_dir = self.config.project_dir(queued.project)
        repo = project_dir / "repo.git"
        workdir = project_dir / "work" / queued.id
        state = project_dir / "runs" / queued.id
        secrets = self.secrets_for(queued.project) if self.secrets_for else {}
        # the HMAC key of secret values: the project's, kept in the server's data
        key = cache_key_at(project_dir / CACHE_KEY_FILE)
        store = self.config.open_store()
        add_worktree(repo, queued.commit, workdir)
        try:
            request = RunRequest(
                params=queued.params,
                run_id=queued.id,
                who=queued.who,
                trigger=queued.trigger,
                env=secrets,
                secrets_from_environment=False,
                cache_scope=_cache_scope(queued.project, secrets, key),
                executors_allowed=self.config.executors_allowed,
                cache_key=key,
                dataset_scope=queued.project,
                dataset_pins=self._dataset_pins(queued),
                facts=server_facts(queued.ref, queued.trigger, queued.project),
                payload=server_payload(
                    queued.ref, queued.commit, queued.trigger, queued.who, queued.project
                ),
                project_id=queued.project,
            )
            checkout = Checkout(workdir, queued.commit, state)
            hooks = RunHooks(on_runner=self._register(queued))
            try:
                settings = self._settings(queued.project, workdir, state)
                if not self._admitted(queued, checkout, settings, request):
                    return None
                record = run_checkout(checkout, settings, store, self.db.records, request, hooks)
            except ConveyorError as exc:
                return RunStatus.FAILED, str(exc), None
            steps = self.db.records.step_runs(queued.id)
            masker = Masker(secrets.values())
            for step in steps:
                if step.log_path:
                    mask_file(Path(step.log_path), masker)
            files = result_files(store, steps)
            # a deployment call's run is not its branch's run: a caller's inputs never
            # enter the branch's result history (which would keep them reachable after
            # retention deleted the run); its results stay under its own run ref
            branch = (
                queued.ref.removeprefix("refs/heads/")
                if queued.ref.startswith("refs/heads/") and queued.trigger != "deployment"
                else None
            )
            message = f"conveyor results of run {queued.id} ({record.status})\n"
            result, withheld = commit_results(
                repo, store, queued.id, queued.commit, files, message, branch, masker
            )
            _warn_withheld(self.db, queued.id, withheld)
            return record.status, record.error or _why(steps), result
        finally:
            remove_worktree(repo, workdir)
            shutil.rmtree(workdir, ignore_errors=True)

    def _dataset_pins(self, queued: QueuedRun) -> dict[str, str]:
        """A resumed run (the web's "Run again" too) reads the dataset commits its
        original read, whatever their branches name now: its cache hits stay hits."""
        original_id = queued.trigger.removeprefix(RESUME)
        if original_id == queued.trigger:
            return {}
        original = self.db.queue.get(original_id)
        if original is None or original.project != queued.project:
            return {}
        return {r.path: r.commit for r in self.db.records.dataset_reads(original_id)}

    def _settings(self, project: str, worktree: Path, state: Path) -> Settings:
        """The checkout's committed settings, as ``conveyor run`` reads them, under what
        is not a pusher's to choose: the admin's database, store, sandbox and container
        runtime; the lead's executor, its options and the network. (An ``[actions] base``
        counts: a sandboxed server's resolver clones only remote URLs.)"""
        chosen = _chosen(self.db, project)
        network = "host" if chosen.get("network", True) else "none"
        committed = committed_settings(worktree)
        return dataclasses.replace(
            committed,
            executor=str(chosen.get("executor", self.config.executor)),
            parallelism=int(chosen.get("parallelism", 0)),
            database=self.config.database_url,
            store=str(self.config.store_dir),
            executors=executor_tables(self.config, chosen, state),
            # a socket URL would let a push reach any daemon (even past network "none")
            # nor may a pushed file let its steps ask for privileged containers
            containers=dataclasses.replace(
                committed.containers,
                runtime="auto",
                network=network,
                privileged=False,
                host_volumes=(),
            ),
            server_sandbox=self.config.sandbox != "none",
        )

    def _register(self, queued: QueuedRun) -> Callable[[Runner], None]:
        def on_runner(runner: Runner) -> None:
            self.active[queued.id] = runner
            if self.stopping:  # shut down between the claim and the start
                runner.request_cancel()

        return on_runner

    def beat(self) -> None:
        """Heartbeat the active runs."""
        self.db.queue.heartbeat(list(self.active))

    def pass_cancels(self) -> None:
        """Cancel the active runs someone asked to cancel (through the database)."""
        ids = list(self.active)
        for run_id in self.db.queue.cancel_requested(ids):
            runner = self.active.get(run_id)
            if runner is not None:
                runner.request_cancel()


def _chosen(db: ServerDatabase, project: str) -> dict[str, Any]:
    """The settings the project's lead chose through the API."""
    return db.accounts.settings(project)


def executor_tables(
    config: ServerConfig, chosen: dict[str, Any], state: Path
) -> dict[str, dict[str, Any]]:
    """The lead's executor tables for a run whose state is in ``state``; the local
    executor's sandbox is the server's, never the project's."""
    tables = {str(k): dict(v) for k, v in dict(chosen.get("executors", {})).items()}
    tables.setdefault("local", {})["sandbox"] = sandbox_setting(config, chosen, state)
    return tables


def run_executors(
    config: ServerConfig, db: ServerDatabase, project: str, run_id: str
) -> dict[str, dict[str, Any]]:
    """The executor tables a run of ``project`` ran with, to recover what it left (an
    HTCondor job goes to the project's pool, not the default one)."""
    state = config.project_dir(project) / "runs" / run_id
    return executor_tables(config, _chosen(db, project), state)


def _warn_withheld(db: ServerDatabase, run_id: str, paths: list[str]) -> None:
    """A binary output that holds a secret stays out of git: the run's events say which."""
    if not paths:
        return
    batch = WriteBatch()
    for path in paths:
        log.warning("run %s: %s holds a secret; kept out of the result commit", run_id, path)
        event = EventRecord(run_id, "result-withheld", time.time(), data={"path": path})
        batch.events.append(event)
    db.records.write(batch)


def _why(steps: list[StepRunRecord]) -> str | None:
    """The first failed step and how it failed, for the run's one-line summary."""
    for step in sorted(steps, key=lambda s: s.ended_at or 0.0):
        if step.status == StepStatus.FAILED:
            how = step.error or f"exit code {step.exit_code}"
            return f"step {step.step_id} failed: {how}"
    return None


def _cache_scope(project: str, secrets: dict[str, str], key: bytes) -> str:
    """Cache entries are shared within a project and its current secrets only: another
    project never gets outputs a step made with this project's secrets. Keyed, so the
    scope (recorded inside every fingerprint) cannot be used to guess a secret offline."""
    digest = hmac.new(key, project.encode(), hashlib.sha256)
    for name in sorted(secrets):
        digest.update(f"\0{name}\0{secrets[name]}".encode())
    return f"project:{project}:{digest.hexdigest()}"


def _warm_up() -> None:
    """Import what a run needs now, not when the first push is waiting for its step."""
    import conveyor.executors.local
    import conveyor.plan.compile
    import conveyor.spec.load  # noqa: F401


def worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def watch(
    config: ServerConfig,
    db: ServerDatabase,
    workers: list[Worker],
    stop: threading.Event,
    secrets_for: SecretsFor,
) -> None:
    """Cancel requests (twice a second), heartbeats and the recovery of runs whose
    worker died (every ``HEARTBEAT`` seconds, or sooner for a short ``stale_after``)."""
    stale_after = config.stale_after
    beat_every = min(HEARTBEAT, stale_after / 4)
    last_beat = 0.0
    while not stop.wait(min(CANCEL_CHECK, beat_every)):
        try:
            for worker in workers:
                worker.pass_cancels()
            if time.monotonic() - last_beat >= beat_every:
                last_beat = time.monotonic()
                for worker in workers:
                    worker.beat()
                stale = db.queue.recover_stale(stale_after)
                interrupt_stale(config, db, stale)
                remove_workspaces(config, db, stale, secrets_for)
        except Exception:
            log.exception("heartbeat failed")


def remove_workspaces(
    config: ServerConfig, db: ServerDatabase, run_ids: list[str], secrets_for: SecretsFor
) -> None:
    """The worktrees that interrupted runs left behind; their logs get masked."""
    for run_id in run_ids:
        run = db.queue.get(run_id)
        if run is None:
            continue
        masker = Masker(secrets_for(run.project).values())
        for step in db.records.step_runs(run_id):
            if step.log_path:
                mask_file(Path(step.log_path), masker)
        workdir = config.project_dir(run.project) / "work" / run_id
        if workdir.exists():
            remove_worktree(config.repo_dir(run.project), workdir)
            shutil.rmtree(workdir, ignore_errors=True)


def interrupt_stale(config: ServerConfig, db: ServerDatabase, run_ids: list[str]) -> None:
    """The run records of runs whose worker died say so too; what their steps left is
    recovered with their project's executor settings; their forges are told."""
    from conveyor.server.db.statuses import Statuses
    from conveyor.server.forge import follow_run

    for run_id in run_ids:
        try:
            follow_run(Statuses(db.engine), run_id, RunStatus.INTERRUPTED)
        except Exception:
            log.exception("could not record the forge status of run %s", run_id)
        run = db.records.get_run(run_id)
        if run is None or run.status.finished:
            continue
        queued = db.queue.get(run_id)
        executors = run_executors(config, db, queued.project, run_id) if queued else {}
        mark_interrupted(db.records, run, "the worker ended mid-run", executors)
