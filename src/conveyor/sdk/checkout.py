"""Running the pipeline of a checkout someone else made: a server's worktree of a
pushed commit. The server decides the settings and owns the store and the records;
compiling, recording and executing the run is the SDK's, exactly as for ``conveyor run``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from conveyor.metadata.records import RunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunHooks, RunRequest, start_run
from conveyor.sdk.settings import Settings
from conveyor.store.cas import ContentStore
from conveyor.vcs.git import GitState


@dataclass(frozen=True)
class Checkout:
    worktree: Path
    """A clean checkout of ``commit`` (nothing uncommitted: the run records no diff)."""
    commit: str
    state_dir: Path
    """The run's own state: its logs, the digest cache, the plan cache."""


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
    ``conveyor run`` reads them there; the caller puts its own decisions on top."""
    return Project(worktree).settings
