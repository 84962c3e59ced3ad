"""Running the pipeline of a checkout someone else made: a server's worktree of a
pushed commit. The server decides the settings and owns the store and the records;
compiling, recording and executing the run is the SDK's, exactly as for ``conveyor run``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ProjectError
from conveyor.metadata.records import RunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.plancache import compile_cached, run_trigger
from conveyor.sdk.project import STATE_DIR, Project
from conveyor.sdk.running import RunHooks, RunRequest, start_run
from conveyor.sdk.settings import CONFIG_NAME, Settings
from conveyor.store.cas import ContentStore
from conveyor.vcs.git import GitState

MAX_CONFIG_BYTES = 1024 * 1024
"""The largest committed ``.conveyor/config.toml`` a checkout's reader takes."""


@dataclass(frozen=True)
class Checkout:
    worktree: Path
    """A clean checkout of ``commit`` (nothing uncommitted: the run records no diff)."""
    commit: str
    state_dir: Path
    """The run's own state: its logs, the digest cache, the plan cache."""


def checkout_plan(
    checkout: Checkout,
    settings: Settings,
    store: ContentStore,
    records: MetadataRepository,
    request: RunRequest,
) -> ExecutionPlan:
    """The plan ``run_checkout`` will run (kept in the checkout's plan cache): what a
    server reads before the run starts (its pipeline's ``concurrency``)."""
    project = Project(
        checkout.worktree,
        state_dir=checkout.state_dir,
        settings=settings,
        records=records,
        store=store,
    )
    trigger = run_trigger(project, request.payload, request.project_id)
    plan, _ = compile_cached(project, request.params, request.only, trigger=trigger)
    return plan


def run_checkout(
    checkout: Checkout,
    settings: Settings,
    store: ContentStore,
    records: MetadataRepository,
    request: RunRequest,
    hooks: RunHooks | None = None,
) -> RunRecord:
    """Run the pipeline of ``checkout``; the final record holds the run's status."""
    project = Project(
        checkout.worktree,
        state_dir=checkout.state_dir,
        settings=settings,
        records=records,
        store=store,
    )
    git = GitState(checkout.worktree, checkout.commit, dirty=False, diff_digest=None)
    return start_run(project, dataclasses.replace(request, git=git), hooks)


def committed_settings(worktree: Path) -> Settings:
    """The settings committed in ``worktree`` (``.conveyor/config.toml``), read exactly as
    ``conveyor run`` reads them there; the caller puts its own decisions on top.

    The checkout is someone else's: a committed symlink must not make the reader take
    its own files for settings, and the file's size is capped before it is read."""
    shown = f"{STATE_DIR}/{CONFIG_NAME}"
    real = (worktree / shown).resolve()
    if not real.is_relative_to(worktree.resolve()):
        raise ProjectError(f"{shown} leads outside the checkout; commit the file itself")
    size = real.stat().st_size if real.is_file() else 0
    if size > MAX_CONFIG_BYTES:
        raise ProjectError(
            f"{shown} is {size} bytes; Conveyor reads settings files of at most "
            f"{MAX_CONFIG_BYTES} bytes"
        )
    return Project(worktree).settings
