"""The cache decision for one step: a hit (an entry that can hand back every declared
output) or a miss with its reason, which ``conveyor why`` explains.

Reasons: ``cache-disabled`` (the step says ``cache: false``), ``forced`` (``--force``),
``new-fingerprint`` (no entry of this step under its key), ``outputs-differ`` (the entry
holds other outputs than the step declares), ``outputs-gone`` (a blob was collected or
lost, or the workspace refused the restore).
"""

from collections.abc import Mapping
from typing import NamedTuple

from conveyor.domain.tracking import tracking_path
from conveyor.errors import StoreError
from conveyor.execute.workspace import Workspace
from conveyor.metadata.records import CacheEntry, OutputRecord
from conveyor.plan.model import StepPlan

MISS_REASONS = ("cache-disabled", "forced", "new-fingerprint", "outputs-differ", "outputs-gone")


class CacheHit(NamedTuple):
    entry: CacheEntry


class CacheMiss(NamedTuple):
    reason: str
    """One of :data:`MISS_REASONS`."""


CacheDecision = CacheHit | CacheMiss


class StepCache:
    """The cache entries of a run's steps: looked up once, added to as steps succeed."""

    def __init__(self, entries: Mapping[str, CacheEntry], force: bool) -> None:
        self._entries = dict(entries)
        self.force = force

    def lookup(self, step: StepPlan, fingerprint: str) -> CacheDecision:
        """Whether an entry can serve the step (nothing is restored yet)."""
        if not step.cache:
            return CacheMiss("cache-disabled")
        if self.force:
            return CacheMiss("forced")
        entry = self._entries.get(fingerprint)
        if entry is None or entry.step_id != step.id:
            return CacheMiss("new-fingerprint")
        held = {o.path for o in entry.outputs} - {tracking_path(step.id)}  # written or not
        if held != set(step.outputs):
            return CacheMiss("outputs-differ")  # it cannot hand back what the step declares
        return CacheHit(entry)

    def restore(self, workspace: Workspace, hit: CacheHit) -> CacheDecision:
        """Put the entry's outputs in the workspace; a miss when the store cannot."""
        try:
            workspace.restore(hit.entry.outputs)
        except StoreError:
            return CacheMiss("outputs-gone")  # run the step again
        return hit

    def add(
        self, fingerprint: str, step_id: str, run_id: str, outputs: list[OutputRecord]
    ) -> CacheEntry:
        """A fresh entry (a later step of the run with the same key is served from it)."""
        entry = CacheEntry(fingerprint, step_id, run_id, tuple(outputs))
        self._entries[fingerprint] = entry
        return entry

    def forget(self, step_id: str, run_id: str) -> None:
        """Drop the entry a step run added: its outputs could not be stored."""
        self._entries = {
            f: e for f, e in self._entries.items() if (e.step_id, e.run_id) != (step_id, run_id)
        }
