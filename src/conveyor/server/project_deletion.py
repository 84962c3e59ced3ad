"""Deleting a project from a server (server admins: the API and ``conveyor server
delete-project``).

Nothing of the project may be running: a run queued or running, a Pachyderm trigger
running or a deployment (it holds processes) makes the deletion refuse with what to end
first, and nothing is removed. Otherwise, in this order:

1. its runs' records and its datasets (each a transaction of the records);
2. every server row of the project (members, secrets, schedules, queue rows, ...) in one
   transaction, which checks again that nothing runs;
3. its files (git repository, run state, Pachyderm pipelines): the directory is renamed
   aside, then removed.

A crash before step 2 leaves the project listed, with fewer runs: deleting it again
finishes. A crash after it leaves a directory no project owns, and a write already under
way when the rows went (a push's queued run, a dataset put) can leave a row or a dataset
under the name. Creating a project of that name removes all of these first, so a new
project never sees an old one's files, runs, datasets or secrets. Blobs stay in the
shared store until ``conveyor server gc``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.errors import NotFoundError
from conveyor.sdk.datasets.scoped import ScopedDatasets
from conveyor.server.config import ServerConfig, check_project_name
from conveyor.server.db.accounts import ProjectBusy, busy
from conveyor.server.state import ServerState

_ALL = 1_000_000_000


@dataclass
class ProjectDeleted:
    name: str
    runs: int
    datasets: int
    rows: dict[str, int] = field(default_factory=dict)
    """Server rows removed, by table."""


def delete_project(state: ServerState, name: str) -> ProjectDeleted:
    """Delete project ``name`` and everything of it (see the module's note);
    NotFoundError when there is none, ProjectBusy while something of it runs."""
    check_project_name(name)
    if state.db.accounts.project(name) is None:
        raise NotFoundError(f"no project {name!r}")
    with state.db.engine.connect() as conn:  # refused before anything is removed
        running = busy(conn, name)
    if running:
        raise ProjectBusy(f"project {name} is in use: {running}")
    run_ids = [q.id for q in state.db.queue.for_project(name, limit=_ALL)]
    datasets = forget_records(state, name, run_ids)
    rows = state.db.accounts.delete_project(name)
    discard_files(state.config, name)
    return ProjectDeleted(name, len(run_ids), datasets, rows)


def forget_records(state: ServerState, name: str, run_ids: list[str]) -> int:
    """Delete the records of ``run_ids`` and every dataset of project ``name`` (from the
    records many projects share); how many datasets went."""
    datasets = ScopedDatasets(state.db.records, name)
    names = [d.name for d in datasets.list_datasets()]
    for dataset in names:
        datasets.delete_dataset(dataset)
    state.db.records.delete_runs(run_ids)
    return len(names)


def discard_files(config: ServerConfig, name: str) -> bool:
    """Remove the directory of project ``name``, if any: renamed aside first (one atomic
    step: no half-removed project directory is ever found by its name), then removed.
    Returns whether there was one."""
    directory = config.project_dir(name)
    trash = config.data / "trash"
    trash.mkdir(mode=0o700, exist_ok=True)
    aside = trash / f"{name}.{os.urandom(6).hex()}"
    try:
        directory.rename(aside)
    except FileNotFoundError:
        return False
    _empty(trash)
    return True


def _empty(trash: Path) -> None:
    """Remove what is in the trash (this deletion's and any a crash left)."""
    for entry in trash.iterdir():
        shutil.rmtree(entry, ignore_errors=True)
