"""The dataset commands on the project's own records and store, answering the JSON the
server's routes answer (``remote.py`` has the same methods over HTTP): one CLI for both."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.put import Progress
from conveyor.sdk.datasets.refs import DatasetRef
from conveyor.sdk.datasets.service import Datasets


class LocalDatasets:
    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    def summaries(self) -> list[dict[str, Any]]:
        return self.datasets.summaries()

    def create(self, name: str, description: str) -> dict[str, Any]:
        return self.datasets.create(name, description).to_json()

    def delete(self, name: str) -> None:
        self.datasets.delete(name)

    def inspect(self, ref: DatasetRef) -> dict[str, Any]:
        return self.datasets.inspect(ref)

    def log(self, ref: DatasetRef, limit: int) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.datasets.log(ref, limit)]

    def ls(self, ref: DatasetRef) -> list[dict[str, Any]]:
        files = self.datasets.resolve(ref).files
        return [item.to_json() for item in trees.listing(files, ref.path)]

    def glob(self, ref: DatasetRef, pattern: str) -> list[dict[str, Any]]:
        files = self.datasets.resolve(ref).files
        return [item.to_json() for item in trees.glob(files, pattern)]

    def diff(self, old: DatasetRef, new: DatasetRef) -> dict[str, Any]:
        before = self.datasets.resolve(old).files
        return trees.diff(before, self.datasets.resolve(new).files).to_json()

    def branches(self, name: str) -> dict[str, str | None]:
        return self.datasets.branches(name)

    def set_branch(self, name: str, branch: str, head: DatasetRef | None) -> dict[str, Any]:
        moved = self.datasets.branch(name, branch, head)
        return {"dataset": name, "branch": branch, "head": moved}

    def delete_branch(self, name: str, branch: str) -> None:
        self.datasets.delete_branch(name, branch)

    def delete_path(self, ref: DatasetRef, message: str) -> dict[str, Any]:
        return self.datasets.delete_path(ref, message).to_json()

    def put(
        self,
        ref: DatasetRef,
        sources: list[str],
        message: str,
        append: bool,
        recursive: bool,
        progress: Progress | None,
        stdin: IO[bytes] | None = None,
    ) -> dict[str, Any]:
        commit = self.datasets.put(ref, sources, message, append, recursive, progress, stdin)
        return commit.to_json()

    def download(self, ref: DatasetRef, dest: Path) -> int:
        return self.datasets.checkout(ref, dest)
