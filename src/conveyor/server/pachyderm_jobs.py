"""Pachyderm jobs on the server: a commit to a dataset runs its downstream pipelines.

Every route that makes a dataset commit (a file or tree put, a file delete) hands
``(project, dataset, branch)`` to :meth:`ServerState.dataset_committed`; one thread of
the server process takes them in order and runs each downstream pipeline's job with
the local job code (``sdk/pachyderm_jobs``): datums in bubblewrap (or their image),
seeing only their own files at ``/pfs``, never the server's data; the output commit is
made only at the end. A pipeline created, updated or asked to run gets a job too
(:meth:`ServerState.pipeline_changed`) once each input has a commit. Pipelines reading
that output follow in the same pass (the downstream order is the DAG's), and one thread
means one job at a time, so never two jobs of one pipeline at once. When the server
starts, a job it left running (killed midway) is run again: the datums that had
finished are reused, the rest run.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from conveyor.errors import ConveyorError
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH
from conveyor.sdk.pachyderm_jobs import Pipelines
from conveyor.server.api_pipelines import pipelines_of
from conveyor.server.state import ServerState
from conveyor.spec.pachyderm_model import PfsInput, leaves

log = logging.getLogger("conveyor.server")
POLL = 0.5  # seconds between looks at the stop event while idle


def run_downstream(state: ServerState, project: str, dataset: str, branch: str) -> int:
    """Run the jobs a commit on ``dataset@branch`` triggers; returns how many ran."""
    pipelines = pipelines_of(state, project)
    names = pipelines.downstream(dataset, branch)
    for name in names:
        _run(pipelines, project, name)
    return len(names)


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
        _run(pipelines, project, after)
    return True


def resume(state: ServerState) -> int:
    """Run again each pipeline whose last job this server left unfinished, then the
    pipelines downstream of it; returns how many were resumed."""
    resumed = 0
    for project in state.db.accounts.projects():
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
            _run(pipelines, project, name)
            spec = pipelines.state.versions(name)[-1].spec()
            for after in pipelines.downstream(name, spec.output_branch):
                _run(pipelines, project, after)
    return resumed


def _run(pipelines: Pipelines, project: str, name: str) -> None:
    try:
        # the server's datums run here in bubblewrap: not on the project's batch executor
        # (its settings are the lead's run settings, not a Project's), whatever they say
        job = pipelines.run(name, executor="local")
    except ConveyorError as exc:  # recorded in the job: the next commit tries again
        log.warning("pachyderm job of %s/%s failed: %s", project, name, str(exc)[:2000])
        return
    log.info("pachyderm job %s of %s/%s: commit %s", job["id"], project, name, job["output_commit"])


def serve(state: ServerState, stop: threading.Event) -> None:
    """The jobs' thread: resume what a crash left, then run each commit's downstream."""
    try:
        resume(state)
    except Exception:
        log.exception("resuming pachyderm jobs failed")
    while not stop.is_set():
        try:
            kind, project, name, branch = state.pachyderm.get(timeout=POLL)
        except queue.Empty:
            continue
        try:
            if kind == "commit":
                run_downstream(state, project, name, branch)
            else:
                run_pipeline(state, project, name)
        except Exception:
            log.exception("pachyderm jobs after %s %s/%s failed", kind, project, name)
