"""The metadata contract the runner and the SDK use, and the batch it writes in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.domain.states import RunStatus
from conveyor.metadata.records import (
    CacheEntry,
    EventRecord,
    InputRecord,
    OutputRecord,
    RunRecord,
    StepRunRecord,
    StepState,
)

if TYPE_CHECKING:  # its dataclasses load with the first dataset call, not on every run
    from conveyor.metadata.datasets import DatasetCommitRecord, DatasetReadRecord, DatasetRecord

RunsPage = tuple[list[RunRecord], int, str | None]
Also = Callable[[Any], None]
"""What a caller writes in the transaction of a dataset commit or branch move, given its
connection (the repository's own kind: a SQLAlchemy one for the SQL records)."""
"""A page of runs, how many match in all, and the ``after`` of the next page (or None)."""


@dataclass
class WriteBatch:
    """Changes that land together in one transaction (all or nothing).

    Step runs are keyed by (run, step): a later write of the same step run in one batch
    replaces the earlier one, so a step that starts and ends between two flushes costs
    a single row write.
    """

    step_runs: dict[tuple[str, str], StepRunRecord] = field(default_factory=dict)
    inputs: dict[tuple[str, str], list[InputRecord]] = field(default_factory=dict)
    cache_entries: list[CacheEntry] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    run_updates: dict[str, tuple[RunStatus, float | None, str | None]] = field(default_factory=dict)

    def put_step_run(self, record: StepRunRecord) -> None:
        self.step_runs[(record.run_id, record.step_id)] = record

    def __bool__(self) -> bool:
        return bool(
            self.step_runs or self.inputs or self.cache_entries or self.events or self.run_updates
        )


class DatasetRepository(Protocol):
    """The dataset half of the records: datasets, their commits and branches."""

    def create_dataset(self, dataset: DatasetRecord) -> bool:
        """False, with nothing written, when a dataset of that name exists."""
        ...

    def get_dataset(self, name: str) -> DatasetRecord | None: ...

    def list_datasets(self) -> list[DatasetRecord]: ...

    def delete_dataset(self, name: str) -> bool:
        """The dataset, its commits and branches in one transaction (blobs stay: ``gc``)."""
        ...

    def commit_dataset(self, commit: DatasetCommitRecord, also: Also | None = None) -> bool:
        """Record ``commit`` and move its branch's head to it, in one transaction, only
        while the head is still ``commit.parent``; False (nothing written) when another
        commit moved it meanwhile. ``also``: called with the transaction's connection
        once the commit is written, so that what it writes lands with the commit or not
        at all (a server's trigger of the downstream jobs)."""
        ...

    def dataset_commit(self, dataset: str, commit_id: str) -> DatasetCommitRecord | None: ...

    def find_dataset_commits(self, dataset: str, prefix: str) -> list[DatasetCommitRecord]:
        """Commits whose id starts with ``prefix`` (hex only; at most 10)."""
        ...

    def dataset_commits(self, dataset: str) -> list[DatasetCommitRecord]:
        """Every commit of the dataset, newest first."""
        ...

    def dataset_branches(self, dataset: str) -> dict[str, str | None]:
        """Branch name -> head commit id (None: a branch without commits yet)."""
        ...

    def set_dataset_branch(
        self, dataset: str, branch: str, head: str | None, also: Also | None = None
    ) -> None:
        """Create or move the branch; ``also`` as for :meth:`commit_dataset`."""
        ...

    def delete_dataset_branch(self, dataset: str, branch: str) -> bool: ...


class MetadataRepository(DatasetRepository, Protocol):
    def create_run(self, run: RunRecord, scope: str = "") -> int:
        """Record ``run`` with the next number of ``scope`` (its project: "" for a local
        project's own records), set in ``run.number`` and returned. Runs recorded at the
        same time get different numbers."""
        ...

    def write(self, batch: WriteBatch) -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        """The records of those of ``run_ids`` that have one, by id (a page's runs in one
        read rather than one each)."""
        ...

    def find_runs(self, prefix: str) -> list[RunRecord]: ...

    def runs_numbered(self, number: int) -> list[RunRecord]:
        """The runs given ``number`` (one per scope: a server's projects each have a run 1),
        at most 1000."""
        ...

    def latest_run(self) -> RunRecord | None: ...

    def list_runs(self, limit: int = 50) -> list[RunRecord]: ...

    def page_runs(
        self,
        limit: int,
        after: str | None = None,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        trigger: str | None = None,
    ) -> RunsPage | None:
        """Runs newest first after the run ``after`` (keyset on ``created_at``, never an
        offset), filtered by equality; None when ``after`` is not a run."""
        ...

    def step_counts(self, run_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """For each run: its step runs served from the cache and those that started."""
        ...

    def step_states(self, run_id: str) -> list[StepState]: ...

    def step_runs(self, run_id: str) -> list[StepRunRecord]: ...

    def step_history(self, step_id: str, limit: int = 20) -> list[StepRunRecord]: ...

    def inputs_of(self, run_id: str, step_id: str) -> list[InputRecord]: ...

    def cache_entries(self, step_ids: Iterable[str]) -> dict[str, CacheEntry]: ...

    def runs_in_progress(self) -> list[RunRecord]: ...

    def producers(self, digest: str) -> list[tuple[str, str, OutputRecord]]: ...

    def consumers(self, digest: str) -> list[tuple[str, str, InputRecord]]: ...

    def outputs_at_path(self, path: str) -> list[tuple[str, str, OutputRecord]]: ...

    def referenced_digests(self) -> set[str]: ...

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Remove runs and everything recorded about them in one transaction; blobs stay
        (``gc`` frees them). Cache entries the runs made go too. Returns how many runs."""
        ...

    def cached_from(self, run_id: str) -> set[str]:
        """The runs whose outputs this run's cache hits restored."""
        ...

    def events(self, run_id: str) -> list[EventRecord]: ...

    def record_dataset_reads(self, reads: Sequence[DatasetReadRecord]) -> None:
        """The dataset commits a run checked out when it started (its ``datasets:``)."""
        ...

    def dataset_reads(self, run_id: str) -> list[DatasetReadRecord]:
        """What ``record_dataset_reads`` kept for the run, by path."""
        ...

    def dataset_readers(self, dataset: str, commit: str) -> list[DatasetReadRecord]:
        """The runs that read that commit, newest first (at most 200)."""
        ...

    def close(self) -> None: ...


__all__: Sequence[str] = ["DatasetRepository", "MetadataRepository", "WriteBatch"]
