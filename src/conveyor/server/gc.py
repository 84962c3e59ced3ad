"""``conveyor server gc``: the blobs no record of the server's database reaches leave the
data directory's store and, on a server with an object store, the bucket.

References: step outputs and cache entries (a kept run's cache hit keeps its producer's),
dataset commits' trees and the datum maps of pipeline output commits, and the file
outputs of deployment executions; the files of every tree among them. Several servers
or workers sharing one bucket share one database: gc runs from one of them (a cron job
on one machine), and is safe anyway (``sdk/objectgc.py``: grace period, blob keys only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor.sdk.maintenance import GcResult, datum_maps_in, sweep
from conveyor.sdk.objectgc import ObjectGcResult, Report, reachable, sweep_objects
from conveyor.server.deployments.store import Deployments
from conveyor.server.state import ServerState
from conveyor.store.cached import CachedStore
from conveyor.store.cas import ContentStore

MIN_SAFE_GRACE = 3600.0
"""Seconds: below this, a bucket's gc may delete an object a worker relies on (it trusts
one it saw written for half an hour) before the record naming it is made."""


@dataclass(frozen=True)
class ServerGcResult:
    local: GcResult
    objects: ObjectGcResult | None
    """None: the server has no object store."""


def references(state: ServerState) -> set[str]:
    """Every digest a record of the server's database names."""
    records = state.db.records
    found = records.referenced_digests() | Deployments(state.db.engine).stored_files()
    return found | datum_maps_in(records, state.config.open_store())


def collect(
    state: ServerState,
    grace: float,
    dry_run: bool = False,
    report: Report | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ServerGcResult:
    """Sweep the object store (when there is one), then the local store."""
    referenced = references(state)  # read before listing: a later record names a young blob
    store = state.config.open_store()
    objects = None
    if isinstance(store, CachedStore):
        keep = reachable(store, referenced)
        objects = sweep_objects(store, keep, grace, dry_run, report, progress)
    local = sweep(ContentStore(state.config.store_dir), referenced, dry_run, grace)
    return ServerGcResult(local, objects)
