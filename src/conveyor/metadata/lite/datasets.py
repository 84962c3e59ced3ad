"""The dataset half of ``LiteRepository``: datasets, commits and branches on ``sqlite3``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cache
from typing import TYPE_CHECKING, Any

from conveyor.metadata.rows import hex_prefix

if TYPE_CHECKING:
    from conveyor.metadata.datasets import DatasetCommitRecord, DatasetReadRecord, DatasetRecord
    from conveyor.metadata.repository import Also

# The dataset records' module (their dataclasses) is imported by the first dataset call:
# a run that reads no dataset never builds them.


@cache
def _insert_commit() -> str:
    from conveyor.metadata.datasets import DatasetCommitRecord, dataset_commit_row

    columns = tuple(dataset_commit_row(DatasetCommitRecord("", "", None, "", "", "", 0, 0, 0)))
    return (
        f"INSERT INTO dataset_commits ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)})"
    )


_SET_HEAD = (
    "INSERT INTO dataset_branches (dataset, name, head) VALUES (?, ?, ?) "
    "ON CONFLICT (dataset, name) DO UPDATE SET head = excluded.head"
)


class LiteDatasets:
    """Mixed into ``LiteRepository``, which provides the transaction and the reads."""

    def _begin(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def create_dataset(self, dataset: DatasetRecord) -> bool:
        with self._begin() as conn:
            cursor = conn.execute(
                "INSERT INTO datasets (name, created_at, description) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (dataset.name, dataset.created_at, dataset.description),
            )
            return cursor.rowcount == 1

    def get_dataset(self, name: str) -> DatasetRecord | None:
        from conveyor.metadata.datasets import dataset_record

        rows = self._rows("SELECT * FROM datasets WHERE name = ?", (name,))
        return dataset_record(rows[0]) if rows else None

    def list_datasets(self) -> list[DatasetRecord]:
        from conveyor.metadata.datasets import dataset_record

        return [dataset_record(r) for r in self._rows("SELECT * FROM datasets ORDER BY name")]

    def delete_dataset(self, name: str) -> bool:
        with self._begin() as conn:
            conn.execute("DELETE FROM dataset_branches WHERE dataset = ?", (name,))
            conn.execute("DELETE FROM dataset_commits WHERE dataset = ?", (name,))
            return conn.execute("DELETE FROM datasets WHERE name = ?", (name,)).rowcount == 1

    def commit_dataset(self, commit: DatasetCommitRecord, also: Also | None = None) -> bool:
        from conveyor.metadata.datasets import dataset_commit_row

        row = dataset_commit_row(commit)
        row["provenance"] = json.dumps(row["provenance"])
        with self._begin() as conn:
            found = conn.execute(
                "SELECT head FROM dataset_branches WHERE dataset = ? AND name = ?",
                (commit.dataset, commit.branch),
            ).fetchone()
            if (found["head"] if found else None) != commit.parent:
                return False
            conn.execute(_insert_commit(), row)
            conn.execute(_SET_HEAD, (commit.dataset, commit.branch, commit.id))
            if also is not None:
                also(conn)
        return True

    def dataset_commit(self, dataset: str, commit_id: str) -> DatasetCommitRecord | None:
        from conveyor.metadata.datasets import dataset_commit_record

        rows = self._rows(
            "SELECT * FROM dataset_commits WHERE dataset = ? AND id = ?", (dataset, commit_id)
        )
        return dataset_commit_record(rows[0]) if rows else None

    def find_dataset_commits(self, dataset: str, prefix: str) -> list[DatasetCommitRecord]:
        from conveyor.metadata.datasets import dataset_commit_record

        if not hex_prefix(prefix):
            return []
        rows = self._rows(
            "SELECT * FROM dataset_commits WHERE dataset = ? AND id LIKE ? LIMIT 10",
            (dataset, prefix + "%"),
        )
        return [dataset_commit_record(r) for r in rows]

    def dataset_commits(self, dataset: str) -> list[DatasetCommitRecord]:
        from conveyor.metadata.datasets import dataset_commit_record

        rows = self._rows(
            "SELECT * FROM dataset_commits WHERE dataset = ? ORDER BY created_at DESC", (dataset,)
        )
        return [dataset_commit_record(r) for r in rows]

    def dataset_branches(self, dataset: str) -> dict[str, str | None]:
        rows = self._rows(
            "SELECT name, head FROM dataset_branches WHERE dataset = ? ORDER BY name", (dataset,)
        )
        return {r["name"]: r["head"] for r in rows}

    def set_dataset_branch(
        self, dataset: str, branch: str, head: str | None, also: Also | None = None
    ) -> None:
        with self._begin() as conn:
            conn.execute(_SET_HEAD, (dataset, branch, head))
            if also is not None:
                also(conn)

    def delete_dataset_branch(self, dataset: str, branch: str) -> bool:
        with self._begin() as conn:
            cursor = conn.execute(
                "DELETE FROM dataset_branches WHERE dataset = ? AND name = ?", (dataset, branch)
            )
            return cursor.rowcount == 1

    # -- runs' reads ----------------------------------------------------------
    def record_dataset_reads(self, reads: Sequence[DatasetReadRecord]) -> None:
        if not reads:  # most runs: no transaction, no records module
            return
        from conveyor.metadata.datasets import dataset_read_row

        with self._begin() as conn:
            conn.executemany(
                "INSERT INTO run_datasets (run_id, path, dataset, commit_id, ref) "
                "VALUES (:run_id, :path, :dataset, :commit_id, :ref)",
                [dataset_read_row(r) for r in reads],
            )

    def dataset_reads(self, run_id: str) -> list[DatasetReadRecord]:
        from conveyor.metadata.datasets import dataset_read_record

        rows = self._rows("SELECT * FROM run_datasets WHERE run_id = ? ORDER BY path", (run_id,))
        return [dataset_read_record(r) for r in rows]

    def dataset_readers(self, dataset: str, commit: str) -> list[DatasetReadRecord]:
        from conveyor.metadata.datasets import dataset_read_record

        rows = self._rows(
            "SELECT d.* FROM run_datasets d JOIN runs r ON r.id = d.run_id "
            "WHERE d.dataset = ? AND d.commit_id = ? ORDER BY r.created_at DESC LIMIT 200",
            (dataset, commit),
        )
        return [dataset_read_record(r) for r in rows]
