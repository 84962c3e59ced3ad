"""What is persisted about versioned datasets (Pachyderm's repos), and their row format.

A dataset commit names a tree in the content-addressed store; it never changes once
written. A branch is a name whose head moves from commit to commit. Both repository
implementations convert rows through the functions here (one storage format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.metadata.records import iso


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    created_at: float
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": iso(self.created_at),
            "description": self.description,
        }


@dataclass(frozen=True)
class DatasetCommitRecord:
    """One immutable commit: its tree, its parent on the branch it was made on, and its
    provenance (input commits, pipeline spec version, image digest, git commit: empty
    for a put by hand)."""

    id: str
    dataset: str
    parent: str | None
    branch: str
    tree: str
    message: str
    created_at: float
    size: int
    files: int
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": self.dataset,
            "parent": self.parent,
            "branch": self.branch,
            "tree": self.tree,
            "message": self.message,
            "created_at": iso(self.created_at),
            "size": self.size,
            "files": self.files,
            "provenance": self.provenance,
        }


def dataset_commit_row(c: DatasetCommitRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "dataset": c.dataset,
        "parent": c.parent,
        "branch": c.branch,
        "tree": c.tree,
        "message": c.message,
        "created_at": c.created_at,
        "size": c.size,
        "files": c.files,
        "provenance": c.provenance,
    }


def dataset_commit_record(row: Mapping[Any, Any]) -> DatasetCommitRecord:
    return DatasetCommitRecord(
        id=row["id"],
        dataset=row["dataset"],
        parent=row["parent"],
        branch=row["branch"],
        tree=row["tree"],
        message=row["message"],
        created_at=row["created_at"],
        size=row["size"],
        files=row["files"],
        provenance=row["provenance"],
    )


def dataset_record(row: Mapping[Any, Any]) -> DatasetRecord:
    return DatasetRecord(row["name"], row["created_at"], row["description"])


@dataclass(frozen=True)
class DatasetReadRecord:
    """A run read ``dataset`` at ``commit`` (named ``ref`` in its pipeline), checked out
    at ``path`` of its workspace."""

    run_id: str
    path: str
    dataset: str
    commit: str
    ref: str

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "path": self.path,
            "dataset": self.dataset,
            "commit": self.commit,
            "ref": self.ref,
        }


def dataset_read_row(r: DatasetReadRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "path": r.path,
        "dataset": r.dataset,
        "commit_id": r.commit,
        "ref": r.ref,
    }


def dataset_read_record(row: Mapping[Any, Any]) -> DatasetReadRecord:
    return DatasetReadRecord(
        row["run_id"], row["path"], row["dataset"], row["commit_id"], row["ref"]
    )
