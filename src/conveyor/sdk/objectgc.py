"""Garbage collection of an object store's blobs (``conveyor server gc`` on a server with
``--store-url``): what no record of this database reaches and no one wrote for the grace
period is deleted, from the bucket and from this machine's cache in front of it.

Safe with several servers and workers on one bucket, as long as they share the database
(the references come from it): a worker relies only on objects written in the last
half hour (``objects._TRUST``), so a grace period longer than that (and than a step's
storing of its outputs) never takes an object from under a record about to be made.
Only keys that are a blob's (``PREFIX/ab/<62 hex>``) are considered: anything else in
the bucket is counted and left alone, and a key is deleted as the digest's own key,
never as the listing spelled it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.domain.jsonshape import JsonShape
from conveyor.errors import StoreError
from conveyor.store.cached import CachedStore

Report = Callable[[str, int], None]
"""Called with each blob (digest, bytes) deleted, or to be deleted in a dry run."""


@dataclass(frozen=True)
class ObjectGcResult(JsonShape):
    removed: int
    freed_bytes: int
    kept: int
    """Blobs referenced, or written within the grace period."""
    young: int
    """Of the kept: unreferenced, but written within the grace period (or at no known time)."""
    foreign: int
    """Keys under the prefix that name no blob: left alone."""
    listed: int
    dry_run: bool


def reachable(store: CachedStore, referenced: set[str]) -> set[str]:
    """``referenced`` and the files of the trees among them, read from this machine's
    cache or else the object store (a blob is read whole only when it starts like a
    tree manifest). A tree that cannot be read (unreachable, damaged) stops the gc."""
    keep = set(referenced)
    for digest in sorted(referenced):
        if not _looks_like_tree(store, digest):
            continue
        if not store.fetch(digest):  # deleted meanwhile: its files are not known
            continue
        try:
            files = store.read_tree(digest)
        except StoreError:  # a JSON output that is no manifest
            continue
        keep.update(f.digest for f in files)
    return keep


def _looks_like_tree(store: CachedStore, digest: str) -> bool:
    local = store.path_of(digest)
    try:
        with open(local, "rb") as handle:
            return handle.read(16).startswith((b'{"dirs": [', b'{"entries": ['))
    except FileNotFoundError:
        return store.remote.is_manifest(digest)


def sweep_objects(
    store: CachedStore,
    keep: set[str],
    grace: float,
    dry_run: bool = False,
    report: Report | None = None,
    progress: Callable[[int, int], None] | None = None,
    now: float | None = None,
) -> ObjectGcResult:
    """Delete the object store's blobs outside ``keep`` last written more than ``grace``
    seconds before ``now``; each also leaves this machine's cache (the two stay alike)."""
    cutoff = (time.time() if now is None else now) - grace
    removed = freed = kept = young = foreign = listed = 0
    for entry in store.remote.listing(progress):
        listed += 1
        if entry.digest is None:
            foreign += 1
            continue
        if entry.digest in keep:
            kept += 1
            continue
        if entry.mtime is None or entry.mtime >= cutoff:
            kept += 1
            young += 1
            continue
        if report is not None:
            report(entry.digest, entry.size)
        removed += 1
        freed += entry.size
        if not dry_run:
            store.remote.delete(entry.digest)
            store.remove(entry.digest)
    return ObjectGcResult(removed, freed, kept, young, foreign, listed, dry_run)
