"""Deleting runs: by name (``conveyor runs delete``) or by a retention policy (``prune``).

Only records are deleted, all in one transaction; blobs stay until ``gc`` finds that no
kept record names them, so a kill at any moment loses nothing that is kept. A run is
never deleted while it is in progress, while it is the newest run recording an output
the workspace holds now, while a kept run restored outputs it produced (``cached_from``),
or while the caller protects it (a server: runs its result refs point to).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as statmod
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.domain.jsonshape import JsonShape
from conveyor.errors import StoreError, UsageError
from conveyor.metadata.records import OutputRecord, RunRecord
from conveyor.sdk.project import Project
from conveyor.sdk.settings import RetentionPolicy
from conveyor.vcs.git import branch_commits

_DAY = 86400.0
_ALL = 1_000_000_000  # list_runs limit meaning "every run"


@dataclass(frozen=True)
class DeleteResult(JsonShape):
    deleted: list[str]
    kept: int
    protected: dict[str, str] = field(default_factory=dict)
    """Run id -> why it was kept although no rule kept it."""
    dry_run: bool = False


def delete_runs(project: Project, refs: Iterable[str], dry_run: bool = False) -> DeleteResult:
    """Delete the named runs (ids or unique prefixes); refuses, deleting none, when any is
    unknown or protected."""
    runs = {r.id: r for r in (project.resolve_run(ref) for ref in refs)}
    if not runs:
        raise UsageError("name at least one run to delete; `conveyor runs` lists them")
    with project.run_lock(wait=False):  # no run may start or end meanwhile
        every = project.records.list_runs(_ALL)
        protected = protected_runs(project, every, kept=set(every_id(every)) - set(runs))
        for run_id in runs:
            if run_id in protected:
                raise UsageError(f"run {run_id} is kept: {protected[run_id]}")
        return _delete(project, list(runs), len(every) - len(runs), {}, dry_run)


def prune(
    project: Project,
    policy: RetentionPolicy,
    dry_run: bool = False,
    now: float | None = None,
    protect: dict[str, str] | None = None,
    runs: list[RunRecord] | None = None,
    workspace: bool = True,
) -> DeleteResult:
    """Delete every run the policy does not keep and nothing protects.

    A server passes its own ``runs`` (one project's, newest first), what its result refs
    ``protect``, and ``workspace=False``: its runs have no lasting workspace.
    """
    if policy.empty:
        raise UsageError(
            "say which runs to keep: --keep-last N, --keep-days D or --keep-branch NAME "
            "(or [retention] in .conveyor/config.toml)"
        )
    lock = project.run_lock(wait=False) if workspace else contextlib.nullcontext()
    with lock:
        every = project.records.list_runs(_ALL) if runs is None else runs
        kept = kept_by_policy(project, every, policy, now or time.time())
        protected = {**(protect or {}), **protected_runs(project, every, kept, workspace)}
        doomed = [r.id for r in every if r.id not in kept and r.id not in protected]
        shown = {k: v for k, v in protected.items() if k not in kept}
        return _delete(project, doomed, len(every) - len(doomed), shown, dry_run)


def every_id(runs: list[RunRecord]) -> list[str]:
    return [r.id for r in runs]


def kept_by_policy(
    project: Project, runs: list[RunRecord], policy: RetentionPolicy, now: float
) -> set[str]:
    """Run ids some rule keeps (``runs`` newest first)."""
    kept: set[str] = set()
    if policy.keep_last:
        kept.update(r.id for r in runs[: policy.keep_last])
    if policy.keep_days is not None:
        cutoff = now - policy.keep_days * _DAY
        kept.update(r.id for r in runs if r.created_at >= cutoff)
    for branch in policy.keep_branches:
        commits = branch_commits(project.root, branch)
        kept.update(r.id for r in runs if r.commit in commits)
    return kept


def protected_runs(
    project: Project, runs: list[RunRecord], kept: set[str], workspace: bool = True
) -> dict[str, str]:
    """Runs that must stay whatever the policy says, with the reason."""
    reasons: dict[str, str] = {}
    for run in runs:
        if str(run.status) in ("running", "queued"):
            reasons[run.id] = "it is still in progress"
    claimed: set[tuple[str, str]] = set()
    for run in runs if workspace else []:  # newest first: the newest recording it wins
        for step in project.records.step_runs(run.id):
            for output in step.outputs:
                key = (output.path, output.digest)
                if key not in claimed and _in_workspace(project, output):
                    claimed.add(key)
                    reasons.setdefault(run.id, f"the workspace holds its output {output.path}")
    # a kept run's cache hits point at the runs that produced those outputs: keep them
    todo = list({*kept, *reasons})
    while todo:
        run_id = todo.pop()
        for source in project.records.cached_from(run_id):
            if source not in kept and source not in reasons:
                reasons[source] = f"run {run_id} restored its outputs from the cache"
                todo.append(source)
    return reasons


def _in_workspace(project: Project, output: OutputRecord) -> bool:
    path = project.root / output.path
    try:
        if output.kind == "tree":
            entries = project.store.read_tree(output.digest)
            return path.is_dir() and all(_same(project, path / e.path, e.digest) for e in entries)
        return _same(project, path, output.digest)
    except (OSError, StoreError):
        return False


def _same(project: Project, path: Path, digest: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return statmod.S_ISREG(st.st_mode) and project.digests.digest(path, st) == digest


def _delete(
    project: Project, run_ids: list[str], kept: int, protected: dict[str, str], dry_run: bool
) -> DeleteResult:
    if run_ids and not dry_run:
        project.records.delete_runs(run_ids)  # the records first, in one transaction
        for run_id in run_ids:  # then the logs: a kill here leaves only stray log files
            shutil.rmtree(project.log_dir(run_id), ignore_errors=True)
    project.digests.flush()
    return DeleteResult(run_ids, kept, protected, dry_run)
