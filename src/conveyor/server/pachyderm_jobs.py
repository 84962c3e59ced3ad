"""Pachyderm jobs on the server: a commit to a dataset runs its downstream pipelines.

Every route that makes a dataset commit (a file or tree put, a file delete, a branch
moved), and every cron tick, records a trigger in the commit's own transaction
(``datasets_of(..., downstream=True)``, ``db/pachyderm_queue``); a pipeline created,
updated or asked to run records one too, and gets a job once each input has a commit.
A trigger is claimed by exactly one claimer and runs each downstream pipeline's job
with the local job code (``sdk/pachyderm_jobs``): datums in bubblewrap (or their
image), seeing only their own files at ``/pfs``, never the server's data; the output
commit is made only at the end. Pipelines reading that output follow in the same pass
(the downstream order is the DAG's). A project's triggers run one at a time, in order;
other projects' run beside them, each on its own thread.

Who claims: ``conveyor worker`` processes take the triggers of projects whose setting
``pachyderm_jobs`` is ``worker`` (jobs off the server process); the server's own
claimer (:func:`serve`) takes every other project's, the fallback. When the server
starts, what its routes held is queued, and a job it left running (killed midway) gets
a trigger again: the datums that had finished are reused, the rest run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from conveyor.errors import ConveyorError
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH, DatasetRef
from conveyor.sdk.pachyderm_jobs import Pipelines
from conveyor.server.api_pipelines import pipelines_of
from conveyor.server.db.pachyderm_queue import CI, COMMIT, Trigger
from conveyor.server.pachyderm_notice import SETTING
from conveyor.server.state import ServerState
from conveyor.spec.pachyderm_model import PfsInput, leaves

log = logging.getLogger("conveyor.server")
POLL = 0.5  # seconds between looks at the stop event while idle
SLOTS = 4  # projects whose jobs one claimer runs at once


def run_downstream(state: ServerState, project: str, dataset: str, branch: str) -> int:
    """Run the jobs a commit on ``dataset@branch`` triggers; returns how many ran. A
    pipeline whose last job already succeeded over these very input commits gets none
    (its own trigger may have run it first, once the branch it reads appeared)."""
    pipelines = pipelines_of(state, project)
    ran = 0
    for name in pipelines.downstream(dataset, branch):
        if not _processed(pipelines, name):
            _run(pipelines, project, name)
            ran += 1
    return ran


def run_pipeline(state: ServerState, project: str, name: str) -> bool:
    """A job of pipeline ``name`` (just created, updated or asked for), then of those
    downstream; none while an input has no commit yet (nothing to run over, as in
    Pachyderm). Returns whether it ran."""
    pipelines = pipelines_of(state, project)
    if not pipelines.state.exists(name):
        return False  # deleted meanwhile
    spec = pipelines.state.versions(name)[-1].spec()
    for leaf in leaves(spec.input):
        branch = leaf.branch if isinstance(leaf, PfsInput) else DEFAULT_BRANCH
        if not leaf.commit and pipelines.datasets.branches(leaf.repo).get(branch) is None:
            return False
    _run(pipelines, project, name)
    for after in pipelines.downstream(name, spec.output_branch):
        if not _processed(pipelines, after):
            _run(pipelines, project, after)
    return True


def _processed(pipelines: Pipelines, name: str) -> bool:
    """Whether the newest job of ``name`` succeeded, at its current spec version, over
    the commits its inputs name now: a job per input commit set, as in Pachyderm."""
    jobs = pipelines.jobs(name)
    if not jobs or jobs[0]["state"] != "success":
        return False
    version = pipelines.state.versions(name)[-1]
    if jobs[0].get("spec_version") != version.version:
        return False
    now: dict[str, str | None] = {}
    for leaf in leaves(version.spec().input):
        if leaf.commit:  # pinned: the commit it names, as the job resolved it
            now[leaf.name] = pipelines.datasets.resolve(
                DatasetRef(leaf.repo, leaf.commit)
            ).commit.id
        else:
            branch = leaf.branch if isinstance(leaf, PfsInput) else DEFAULT_BRANCH
            now[leaf.name] = pipelines.datasets.branches(leaf.repo).get(branch)
    ran_over = {key: value.get("commit") for key, value in jobs[0]["inputs"].items()}
    return ran_over == now


def resume(state: ServerState) -> int:
    """A trigger again for each pipeline whose last job this server left unfinished (its
    claimer runs it, then the pipelines downstream); returns how many. A project with
    triggers still owed gets none: the trigger that ran the job is one of them."""
    resumed = 0
    owed = {str(row["project"]) for row in state.db.pachyderm.pending()}
    for project in state.db.accounts.projects():
        if project in owed:
            continue
        if not (state.config.project_dir(project) / "datasets" / "pachyderm").is_dir():
            continue
        pipelines = pipelines_of(state, project)
        for name in pipelines.state.names():
            jobs = pipelines.jobs(name)
            if jobs and jobs[0]["state"] == "running" and jobs[0].get("pid") == os.getpid():
                # a server killed with our pid (pid 1 in a container): no job runs yet
                stale = {**pipelines.state.job(jobs[0]["id"]), "state": "interrupted"}
                pipelines.state.save_job(stale)
                jobs[0] = stale
            if not jobs or jobs[0]["state"] != "interrupted":
                continue
            resumed += 1
            state.pipeline_changed(project, name)
    return resumed


def run_trigger(state: ServerState, trigger: Trigger) -> None:
    """The jobs a trigger owes (a ``ci`` trigger: a push's CI flow, ``pachyderm_ci``); a
    failed job is recorded in the job (a failed flow in its record), never raised."""
    if trigger.kind == COMMIT:
        run_downstream(state, trigger.project, trigger.name, trigger.branch)
    elif trigger.kind == CI:
        from conveyor.server.pachyderm_ci import run_ci

        run_ci(state, trigger)
    else:
        run_pipeline(state, trigger.project, trigger.name)


def projects_of(state: ServerState, on_worker: bool) -> list[str]:
    """The projects whose triggers a worker (or the server's own claimer) takes."""
    chosen = []
    for project in state.db.accounts.projects():
        settings = state.db.accounts.settings(project)
        if (settings.get(SETTING) == "worker") == on_worker:
            chosen.append(project)
    return chosen


def _run(pipelines: Pipelines, project: str, name: str) -> None:
    try:
        # datums run here (server or worker) in bubblewrap: not on the project's executor
        # (its settings are the lead's run settings, not a Project's), whatever they say
        job = pipelines.run(name, executor="local")
    except ConveyorError as exc:  # recorded in the job: the next commit tries again
        log.warning("pachyderm job of %s/%s failed: %s", project, name, str(exc)[:2000])
        return
    log.info("pachyderm job %s of %s/%s: commit %s", job["id"], project, name, job["output_commit"])


def serve(state: ServerState, stop: threading.Event) -> None:
    """The server's own claimer: queue what a crash left, then run the triggers of the
    projects that have no worker (``pachyderm_jobs`` is not ``worker``)."""
    name = f"{socket.gethostname()}:server:pachyderm"  # the same after a restart
    try:
        state.db.pachyderm.release_held()
        state.db.pachyderm.restart(name)
        resume(state)
    except Exception:
        log.exception("resuming pachyderm jobs failed")
    claim_loop(state, name, lambda: projects_of(state, on_worker=False), stop)


def claim_loop(
    state: ServerState,
    name: str,
    projects: Callable[[], list[str]],
    stop: threading.Event,
    slots: int = SLOTS,
    seen: bool = False,
) -> None:
    """Claim triggers of ``projects()`` and run each on a thread of its own (at most
    ``slots`` at once): a long job of one project holds no other project's. Beats the
    running ones and queues again those whose claimer died; a ``conveyor worker``'s
    (``seen``) also records that it asks for work (``pachyderm_notice``)."""
    queue = state.db.pachyderm
    queue.restart(name)
    running: dict[str, threading.Thread] = {}
    last_beat = 0.0
    beat_every = min(2.0, state.config.stale_after / 4)
    while not stop.is_set():
        try:
            for done in [k for k, thread in running.items() if not thread.is_alive()]:
                running.pop(done)
            if time.monotonic() - last_beat >= beat_every:
                last_beat = time.monotonic()
                queue.heartbeat(list(running), name)
                if seen:
                    queue.seen(name)
                queue.recover_stale(state.config.stale_after)
            trigger = queue.claim(name, projects()) if len(running) < slots else None
        except Exception:  # the database went away for a moment: try again
            log.exception("claiming pachyderm triggers failed")
            trigger = None
        if trigger is None:
            state.pachyderm_wake.wait(POLL)
            state.pachyderm_wake.clear()
            continue
        # a daemon thread: a job of hours must not hold the process's stop up (its
        # trigger stays running, then stale, and its job resumes after a restart)
        thread = threading.Thread(
            target=_run_trigger,
            args=(state, trigger, name),
            name=f"pachyderm-{trigger.id}",
            daemon=True,
        )
        running[trigger.id] = thread
        thread.start()


def _run_trigger(state: ServerState, trigger: Trigger, worker: str) -> None:
    try:
        run_trigger(state, trigger)
    except Exception:
        log.exception(
            "pachyderm jobs of %s %s/%s failed", trigger.kind, trigger.project, trigger.name
        )
    finally:
        try:
            state.db.pachyderm.finish(trigger.id, worker)
        except Exception:  # stays running: recovered as stale, its job resumes
            log.exception("could not finish pachyderm trigger %s", trigger.id)
        state.pachyderm_wake.set()
