"""Keeping the store tidy and bringing outputs back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.jsonshape import JsonShape
from conveyor.errors import NotFoundError
from conveyor.metadata.records import RunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.project import Project
from conveyor.store.cas import CheckoutMode, ContentStore


@dataclass(frozen=True)
class GcResult:
    removed: int
    freed_bytes: int
    kept: int
    dry_run: bool


def collect_garbage(project: Project, dry_run: bool = False) -> GcResult:
    """Drop blobs no recorded output refers to (trees keep the blobs they list)."""
    # never collect under a running step's feet, nor a dataset put's
    with project.run_lock(wait=False), project.data_lock(exclusive=True):
        referenced = project.records.referenced_digests() | datum_maps(project)
        return sweep(project.store, referenced, dry_run)


def datum_maps(project: Project) -> set[str]:
    """The datum maps of pipeline output commits and the per-datum output trees they
    name: kept, so that the next job still reuses the datums done (``pachyderm_jobs``)."""
    return datum_maps_in(project.records, project.store)


def datum_maps_in(records: MetadataRepository, store: ContentStore) -> set[str]:
    """:func:`datum_maps` of these records and store (a server's, shared by projects)."""
    import json

    found: set[str] = set()
    for dataset in records.list_datasets():
        for commit in records.dataset_commits(dataset.name):
            digest = (commit.provenance or {}).get("datums")
            if not isinstance(digest, str) or not store.has(digest):
                continue
            found.add(digest)
            found.update(str(tree) for tree in json.loads(store.read_bytes(digest)).values())
    return found


def sweep(
    store: ContentStore, referenced: set[str], dry_run: bool = False, grace: float = 0.0
) -> GcResult:
    """Remove blobs outside ``referenced`` (and the trees' files), unless touched in the
    last ``grace`` seconds: a server, whose runs go on meanwhile, sweeps only blobs no
    run can be about to record (storing an existing blob touches it)."""
    keep = set(referenced)
    for digest in list(keep):
        if store.has(digest):
            try:
                keep.update(e.digest for e in store.read_tree(digest))
            except Exception:  # a plain file blob, not a manifest
                continue
    cutoff = time.time() - grace
    removed = freed = kept = 0
    for digest in store.iter_digests():
        try:
            st = store.path_of(digest).stat()
        except FileNotFoundError:
            continue
        if digest in keep or (grace and st.st_mtime >= cutoff):
            kept += 1
            continue
        removed += 1
        freed += st.st_size if dry_run else store.remove(digest)
    if not dry_run and not grace:
        store.clean_tmp()  # with a grace period, tmp/ holds writes in progress
    return GcResult(removed, freed, kept, dry_run)


@dataclass(frozen=True)
class VerifyResult(JsonShape):
    checked: int
    checked_bytes: int
    damaged: list[str]
    """Blobs whose content no longer hashes to their name."""
    missing: list[str]
    """Blobs a kept record names that are not in the store."""
    quarantined: list[str]
    repaired: bool


def verify_store(
    project: Project, repair: bool = False, progress: Callable[[int, int], None] | None = None
) -> VerifyResult:
    """Rehash every blob (fsck); with ``repair``, move damaged ones to ``quarantine/``.

    A quarantined blob is as if collected: the next run of a step whose cache entry
    names it runs the step again. ``progress(done, total)`` is called as blobs are read.
    """
    store = project.store
    digests = list(store.iter_digests())
    damaged: list[str] = []
    checked_bytes = 0
    for index, digest in enumerate(digests, 1):
        try:
            checked_bytes += store.path_of(digest).stat().st_size
            if not store.intact(digest):
                damaged.append(digest)
        except FileNotFoundError:  # collected meanwhile
            pass
        except OSError:  # unreadable is damaged too
            damaged.append(digest)
        if progress is not None:
            progress(index, len(digests))
    present = set(digests)
    missing = sorted(d for d in project.records.referenced_digests() if d not in present)
    quarantined: list[str] = []
    if repair:
        with project.run_lock(wait=False):  # never under a running step's feet
            quarantined = [d for d in damaged if store.quarantine(d) is not None]
    return VerifyResult(len(digests), checked_bytes, damaged, missing, quarantined, repair)


@dataclass(frozen=True)
class FetchResult:
    run: RunRecord
    files: int
    destination: Path


def fetch_outputs(
    project: Project, ref: str, destination: Path | None, mode: CheckoutMode = "copy"
) -> FetchResult:
    """Check out every output a run produced (or served from cache) under ``destination``."""
    run = project.resolve_run(ref)
    target = destination or project.root
    count = 0
    steps = project.records.step_runs(run.id)
    if not any(s.outputs for s in steps):
        raise NotFoundError(f"run {run.id} recorded no outputs")
    for step in steps:
        for output in step.outputs:
            dest = target / output.path
            if output.kind == "tree":  # verified: a damaged blob is never handed out
                project.store.checkout_tree(output.digest, dest, mode, verify=True)
                count += len(project.store.read_tree(output.digest))
            else:
                project.store.checkout_file(output.digest, dest, mode, verify=True)
                count += 1
    return FetchResult(run, count, target)
