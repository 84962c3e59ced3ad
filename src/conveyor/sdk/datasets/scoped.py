"""Datasets of one project in records that many projects share (a server's).

A dataset ``images`` of project ``demo`` is recorded as ``demo/images``: the records
stay one table (one ``gc`` sees every dataset tree), and each project sees only its own.
Names going in get the scope; records coming out lose it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from conveyor.metadata.datasets import DatasetCommitRecord, DatasetRecord
from conveyor.metadata.repository import Also, DatasetRepository

OnChange = Callable[[Any, str, str], None]


class ScopedDatasets:
    """A ``DatasetRepository`` over ``inner`` limited to names under ``scope``."""

    def __init__(
        self, inner: DatasetRepository, scope: str, on_change: OnChange | None = None
    ) -> None:
        """``on_change``: written in the transaction of every commit and branch move
        made through this object (with the connection, the dataset and the branch)."""
        self.inner = inner
        self.prefix = scope + "/"
        self.on_change = on_change

    def _also(self, dataset: str, branch: str, also: Also | None) -> Also | None:
        on_change = self.on_change
        if on_change is None:
            return also

        def both(conn: Any) -> None:
            if also is not None:
                also(conn)
            on_change(conn, dataset, branch)

        return both

    def _in(self, name: str) -> str:
        return self.prefix + name

    def _out(self, commit: DatasetCommitRecord | None) -> DatasetCommitRecord | None:
        if commit is None:
            return None
        return dataclasses.replace(commit, dataset=commit.dataset.removeprefix(self.prefix))

    def _outs(self, commits: list[DatasetCommitRecord]) -> list[DatasetCommitRecord]:
        return [
            dataclasses.replace(c, dataset=c.dataset.removeprefix(self.prefix)) for c in commits
        ]

    def create_dataset(self, dataset: DatasetRecord) -> bool:
        return self.inner.create_dataset(dataclasses.replace(dataset, name=self._in(dataset.name)))

    def get_dataset(self, name: str) -> DatasetRecord | None:
        found = self.inner.get_dataset(self._in(name))
        return None if found is None else dataclasses.replace(found, name=name)

    def list_datasets(self) -> list[DatasetRecord]:
        return [
            dataclasses.replace(d, name=d.name.removeprefix(self.prefix))
            for d in self.inner.list_datasets()
            if d.name.startswith(self.prefix)
        ]

    def delete_dataset(self, name: str) -> bool:
        return self.inner.delete_dataset(self._in(name))

    def commit_dataset(self, commit: DatasetCommitRecord, also: Also | None = None) -> bool:
        scoped = dataclasses.replace(commit, dataset=self._in(commit.dataset))
        return self.inner.commit_dataset(scoped, self._also(commit.dataset, commit.branch, also))

    def dataset_commit(self, dataset: str, commit_id: str) -> DatasetCommitRecord | None:
        return self._out(self.inner.dataset_commit(self._in(dataset), commit_id))

    def find_dataset_commits(self, dataset: str, prefix: str) -> list[DatasetCommitRecord]:
        return self._outs(self.inner.find_dataset_commits(self._in(dataset), prefix))

    def dataset_commits(self, dataset: str) -> list[DatasetCommitRecord]:
        return self._outs(self.inner.dataset_commits(self._in(dataset)))

    def dataset_branches(self, dataset: str) -> dict[str, str | None]:
        return self.inner.dataset_branches(self._in(dataset))

    def set_dataset_branch(
        self, dataset: str, branch: str, head: str | None, also: Also | None = None
    ) -> None:
        self.inner.set_dataset_branch(
            self._in(dataset), branch, head, self._also(dataset, branch, also)
        )

    def delete_dataset_branch(self, dataset: str, branch: str) -> bool:
        return self.inner.delete_dataset_branch(self._in(dataset), branch)
