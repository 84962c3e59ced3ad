"""Keeping the store tidy and bringing outputs back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import NotFoundError
from conveyor.metadata.records import RunRecord
from conveyor.sdk.project import Project
from conveyor.store.cas import CheckoutMode


@dataclass(frozen=True)
class GcResult:
    removed: int
    freed_bytes: int
    kept: int
    dry_run: bool


def collect_garbage(project: Project, dry_run: bool = False) -> GcResult:
    """Drop blobs no recorded output refers to (trees keep the blobs they list)."""
    store = project.store
    with project.run_lock(wait=False):  # never collect under a running step's feet
        keep = set(project.records.referenced_digests())
        for digest in list(keep):
            if store.has(digest):
                try:
                    keep.update(e.digest for e in store.read_tree(digest))
                except Exception:  # a plain file blob, not a manifest
                    continue
        removed = freed = kept = 0
        for digest in store.iter_digests():
            if digest in keep:
                kept += 1
                continue
            removed += 1
            freed += store.path_of(digest).stat().st_size if dry_run else store.remove(digest)
        if not dry_run:
            store.clean_tmp()
    return GcResult(removed, freed, kept, dry_run)


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
            if output.kind == "tree":
                project.store.checkout_tree(output.digest, dest, mode)
                count += len(project.store.read_tree(output.digest))
            else:
                project.store.checkout_file(output.digest, dest, mode)
                count += 1
    return FetchResult(run, count, target)
