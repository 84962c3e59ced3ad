"""The dataset half of ``SqlRepository``: datasets, commits and branches in SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from conveyor.metadata.datasets import (
    DatasetCommitRecord,
    DatasetReadRecord,
    DatasetRecord,
    dataset_commit_record,
    dataset_commit_row,
    dataset_read_record,
    dataset_read_row,
    dataset_record,
)
from conveyor.metadata.rows import hex_prefix
from conveyor.metadata.sql import tables as t

if TYPE_CHECKING:
    from conveyor.metadata.repository import Also


class SqlDatasets:
    """Mixed into ``SqlRepository``, which provides the transaction, reads and upserts."""

    def _begin(self) -> Any:
        raise NotImplementedError

    def _rows(self, stmt: Any, params: dict[str, Any] | None = None) -> Sequence[sa.Row[Any]]:
        raise NotImplementedError

    def _insert(self, table: sa.Table) -> Any:
        raise NotImplementedError

    def create_dataset(self, dataset: DatasetRecord) -> bool:
        row = {"name": dataset.name, "created_at": dataset.created_at}
        stmt = (
            self._insert(t.datasets)
            .values({**row, "description": dataset.description})
            .on_conflict_do_nothing()
            .returning(t.datasets.c.name)  # psycopg reports no rowcount for this insert
        )
        with self._begin() as conn:
            return conn.execute(stmt).first() is not None

    def get_dataset(self, name: str) -> DatasetRecord | None:
        rows = self._rows(sa.select(t.datasets).where(t.datasets.c.name == name))
        return dataset_record(rows[0]._mapping) if rows else None

    def list_datasets(self) -> list[DatasetRecord]:
        rows = self._rows(sa.select(t.datasets).order_by(t.datasets.c.name))
        return [dataset_record(r._mapping) for r in rows]

    def delete_dataset(self, name: str) -> bool:
        b, c = t.dataset_branches, t.dataset_commits
        with self._begin() as conn:
            conn.execute(b.delete().where(b.c.dataset == name))
            conn.execute(c.delete().where(c.c.dataset == name))
            result = conn.execute(t.datasets.delete().where(t.datasets.c.name == name))
            return bool(result.rowcount == 1)

    def commit_dataset(self, commit: DatasetCommitRecord, also: Also | None = None) -> bool:
        b = t.dataset_branches
        where = (b.c.dataset == commit.dataset) & (b.c.name == commit.branch)
        with self._begin() as conn:
            # FOR UPDATE: a concurrent commit to the branch waits (PostgreSQL); SQLite
            # serialises writers anyway
            head = conn.execute(sa.select(b.c.head).where(where).with_for_update()).first()
            if (head.head if head else None) != commit.parent:
                return False
            conn.execute(t.dataset_commits.insert().values(dataset_commit_row(commit)))
            self._set_head(conn, commit.dataset, commit.branch, commit.id)
            if also is not None:
                also(conn)
        return True

    def _set_head(self, conn: Any, dataset: str, branch: str, head: str | None) -> None:
        stmt = self._insert(t.dataset_branches)
        stmt = stmt.on_conflict_do_update(
            index_elements=["dataset", "name"], set_={"head": stmt.excluded.head}
        )
        conn.execute(stmt, {"dataset": dataset, "name": branch, "head": head})

    def dataset_commit(self, dataset: str, commit_id: str) -> DatasetCommitRecord | None:
        c = t.dataset_commits
        rows = self._rows(sa.select(c).where(c.c.dataset == dataset, c.c.id == commit_id))
        return dataset_commit_record(rows[0]._mapping) if rows else None

    def find_dataset_commits(self, dataset: str, prefix: str) -> list[DatasetCommitRecord]:
        if not hex_prefix(prefix):
            return []
        c = t.dataset_commits
        stmt = sa.select(c).where(c.c.dataset == dataset, c.c.id.like(prefix + "%")).limit(10)
        return [dataset_commit_record(r._mapping) for r in self._rows(stmt)]

    def dataset_commits(self, dataset: str) -> list[DatasetCommitRecord]:
        c = t.dataset_commits
        stmt = sa.select(c).where(c.c.dataset == dataset).order_by(c.c.created_at.desc())
        return [dataset_commit_record(r._mapping) for r in self._rows(stmt)]

    def dataset_branches(self, dataset: str) -> dict[str, str | None]:
        b = t.dataset_branches
        stmt = sa.select(b.c.name, b.c.head).where(b.c.dataset == dataset).order_by(b.c.name)
        return {r.name: r.head for r in self._rows(stmt)}

    def set_dataset_branch(
        self, dataset: str, branch: str, head: str | None, also: Also | None = None
    ) -> None:
        with self._begin() as conn:
            self._set_head(conn, dataset, branch, head)
            if also is not None:
                also(conn)

    def delete_dataset_branch(self, dataset: str, branch: str) -> bool:
        b = t.dataset_branches
        with self._begin() as conn:
            result = conn.execute(b.delete().where(b.c.dataset == dataset, b.c.name == branch))
            return bool(result.rowcount == 1)

    # -- runs' reads ----------------------------------------------------------
    def record_dataset_reads(self, reads: Sequence[DatasetReadRecord]) -> None:
        if not reads:
            return
        with self._begin() as conn:
            conn.execute(t.run_datasets.insert(), [dataset_read_row(r) for r in reads])

    def dataset_reads(self, run_id: str) -> list[DatasetReadRecord]:
        d = t.run_datasets
        stmt = sa.select(d).where(d.c.run_id == run_id).order_by(d.c.path)
        return [dataset_read_record(r._mapping) for r in self._rows(stmt)]

    def dataset_readers(self, dataset: str, commit: str) -> list[DatasetReadRecord]:
        d, r = t.run_datasets, t.runs
        stmt = (
            sa.select(d)
            .join(r, r.c.id == d.c.run_id)
            .where(d.c.dataset == dataset, d.c.commit_id == commit)
            .order_by(r.c.created_at.desc())
            .limit(200)
        )
        return [dataset_read_record(row._mapping) for row in self._rows(stmt)]
