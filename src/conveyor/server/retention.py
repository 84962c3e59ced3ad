"""A project's retention setting, applied by the server on its own after each run.

The project lead sets ``retention`` (``{"keep_last": N, "keep_days": D,
"keep_branches": [...]}``) through the settings API. After a run of the project ends,
the worker deletes the runs the policy does not keep: records first (one transaction),
then the queue rows, the per-run result refs, the refs that kept a deployment call's
files reachable (``refs/conveyor/deployments/calls/SHA``, when no kept run is of that
commit: its objects become unreachable) and the run's state directory. A run that a
branch's result ref points to, and a run still queued or running, is never deleted.
Blobs stay in the shared store until ``conveyor server gc`` (with its grace period).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from conveyor.errors import ProjectError
from conveyor.metadata.records import RunRecord
from conveyor.sdk.project import Project
from conveyor.sdk.retention import DeleteResult, prune
from conveyor.sdk.settings import RetentionPolicy, Settings
from conveyor.server.config import ServerConfig
from conveyor.server.craft.definitions import forget as forget_execution
from conveyor.server.db.database import ServerDatabase
from conveyor.server.deployments.callfiles import CALLS_REF
from conveyor.server.results import RESULTS_PREFIX
from conveyor.vcs.git import git

log = logging.getLogger("conveyor.server")
_ALL = 1_000_000_000


def policy_of(project: str, settings: dict[str, Any]) -> RetentionPolicy:
    """The project's policy (empty when it has none); ProjectError when malformed."""
    return RetentionPolicy.parse(f"project {project}", settings.get("retention") or {})


def apply_retention(
    config: ServerConfig, db: ServerDatabase, project: str, dry_run: bool = False
) -> DeleteResult | None:
    """Delete the project's runs its retention setting does not keep; None: no setting."""
    policy = policy_of(project, db.accounts.settings(project))
    if policy.empty:
        return None
    repo = config.repo_dir(project)
    queued = db.queue.for_project(project, limit=_ALL)  # newest first
    protect = {q.id: "it is still in progress" for q in queued if not q.status.finished}
    pointed = _branch_results(repo, {q.id for q in queued})
    for q in queued:
        if q.result_commit and q.result_commit in pointed:
            protect.setdefault(q.id, f"the result ref of {pointed[q.result_commit]} points to it")
    runs: list[RunRecord] = []
    for q in queued:
        record = db.records.get_run(q.id)
        if record is not None:
            runs.append(record)
        elif q.id not in protect:  # never started (refused at the door): the queue row only
            runs.append(RunRecord(q.id, "", q.status, q.commit, False, q.created_at))
    handle = Project(
        repo, state_dir=config.project_dir(project), settings=Settings(), records=db.records
    )
    result = prune(handle, policy, dry_run, protect=protect, runs=runs, workspace=False)
    if not dry_run and result.deleted:
        db.queue.delete(result.deleted)
        for run_id in result.deleted:
            with contextlib.suppress(ProjectError):  # a run that committed no results
                git(repo, "update-ref", "-d", f"{RESULTS_PREFIX}{run_id}")
            forget_execution(repo, run_id)  # a Craft execution's inputs commit, if it was one
            shutil.rmtree(config.project_dir(project) / "runs" / run_id, ignore_errors=True)
        _forget_calls(repo, runs, set(result.deleted))
        log.info("retention: deleted %d runs of %s", len(result.deleted), project)
    return result


def _forget_calls(repo: Path, runs: list[RunRecord], deleted: set[str]) -> None:
    """Drop the call refs of the deleted runs' commits that no kept run shares."""
    kept = {r.commit for r in runs if r.id not in deleted}
    gone = {r.commit for r in runs if r.id in deleted and r.commit and r.commit not in kept}
    if not gone:
        return
    listed = git(repo, "for-each-ref", "--format=%(refname)", CALLS_REF)
    for name in listed.split():
        if name.removeprefix(CALLS_REF) in gone:
            git(repo, "update-ref", "-d", name)


def _branch_results(repo: Path, run_ids: set[str]) -> dict[str, str]:
    """Result commit -> the branch whose result ref points to it (per-run refs aside)."""
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", RESULTS_PREFIX)
    pointed: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition(" ")
        branch = name.removeprefix(RESULTS_PREFIX)
        if branch not in run_ids:
            pointed[sha] = branch
    return pointed
