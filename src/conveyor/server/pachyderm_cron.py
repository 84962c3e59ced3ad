"""Cron inputs of Pachyderm pipelines, ticking on the server's clock.

The schedule clock (``schedules.clock``) calls :func:`tick` every second. A cron input's
dataset (``<pipeline>_<name>``, made with the pipeline) gets, at each due time, a commit
with an empty file named by that time in UTC (``2026-12-03T08:10:00Z``), as Pachyderm
writes it: added beside the earlier ticks, or replacing them with ``overwrite``. That
commit runs the pipeline like any other (``pachyderm_jobs``). The next due time follows
the head commit's time (the last tick survives a restart: no burst of missed ticks, at
most one), or the pipeline's creation when it never ticked. ``@every D`` takes Go
durations; other specs are cron's fields (croniter), in UTC.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from conveyor.errors import ConveyorError, NotFoundError
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH, DatasetRef
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.pachyderm_jobs import Pipelines
from conveyor.server.api_datasets import datasets_of
from conveyor.server.api_pipelines import pipelines_of
from conveyor.server.state import ServerState
from conveyor.spec.pachyderm_model import CronInput, leaves
from conveyor.store.cas import TreeEntry

log = logging.getLogger("conveyor.server")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
MIN_EVERY = 1.0  # seconds: the clock's own tick
_CACHE: dict[
    Path, tuple[tuple[int, int], float, tuple[CronInput, ...]]
] = {}  # the clock's thread only


def next_tick(spec: str, after: float) -> float:
    """When a cron input's ``spec`` fires next after ``after`` (ValueError if invalid)."""
    if spec.startswith("@every "):
        seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(spec[7:]))
        return after + max(seconds, MIN_EVERY)
    from croniter import croniter

    if not croniter.is_valid(spec):
        raise ValueError(f"{spec!r} is not a schedule")
    return float(croniter(spec, datetime.fromtimestamp(after, UTC)).get_next(float))


def tick(state: ServerState, now: float) -> int:
    """Commit the due ticks of every project's cron inputs; returns how many."""
    made = 0
    for project in state.db.accounts.projects():
        if not (state.config.project_dir(project) / "datasets" / "pachyderm").is_dir():
            continue
        pipelines = pipelines_of(state, project)
        for name in pipelines.state.names():
            try:
                created, crons = _cron_inputs(pipelines, name)
            except (OSError, NotFoundError):  # deleted meanwhile
                continue
            for leaf in crons:
                if _due(pipelines, leaf, created, now):
                    try:  # the tick's commit queues its jobs in its own transaction
                        _commit_tick(datasets_of(state, project, downstream=True), leaf, now)
                    except ConveyorError as exc:
                        log.warning("cron %s of %s/%s: %s", leaf.name, project, name, exc)
                        continue
                    state.pachyderm_wake.set()
                    made += 1
    return made


def _cron_inputs(pipelines: Pipelines, name: str) -> tuple[float, tuple[CronInput, ...]]:
    """The pipeline's latest version's time and cron inputs, read again only when its
    file changed (the clock asks every second)."""
    path = pipelines.state.root / "pipelines" / f"{name}.json"
    info = path.stat()
    stamp = (info.st_ino, info.st_mtime_ns)  # each version is a new file (atomic rename)
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    version = pipelines.state.versions(name)[-1]
    crons = tuple(leaf for leaf in leaves(version.spec().input) if isinstance(leaf, CronInput))
    _CACHE[path] = (stamp, version.created_at, crons)
    return version.created_at, crons


def _due(pipelines: Pipelines, leaf: CronInput, created: float, now: float) -> bool:
    if pipelines.datasets.records.get_dataset(leaf.repo) is None:
        return False
    head = pipelines.datasets.branches(leaf.repo).get(DEFAULT_BRANCH)
    last = created
    if head is not None:
        commit = pipelines.datasets.records.dataset_commit(leaf.repo, head)
        last = commit.created_at if commit else created
    try:
        return next_tick(leaf.spec, last) <= now
    except ValueError:
        return False


def _commit_tick(datasets: Datasets, leaf: CronInput, now: float) -> None:
    head = datasets.branches(leaf.repo).get(DEFAULT_BRANCH)
    files: dict[str, TreeEntry] = {}
    if head is not None and not leaf.overwrite:
        files = dict(datasets.resolve(DatasetRef(leaf.repo, head)).files)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    empty = datasets.project.store.put_bytes(b"")
    files[stamp] = TreeEntry(stamp, empty, 0)
    datasets.commit_files(leaf.repo, DEFAULT_BRANCH, head, files, f"cron tick {stamp}", {})
