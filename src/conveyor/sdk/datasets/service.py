"""The dataset commands of a project: create, put, resolve, list, get, log, diff, branch.

A put stores every blob, then the tree, and only then records the commit and moves the
branch head in one transaction (``commit_dataset``): a process killed anywhere before
leaves blobs for ``gc`` and no commit. Commits never change; branches move.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conveyor.errors import ConcurrencyError, NotFoundError, UsageError
from conveyor.metadata.datasets import DatasetCommitRecord, DatasetRecord
from conveyor.metadata.repository import DatasetRepository
from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.put import (
    Progress,
    Source,
    Stored,
    merged,
    plan_sources,
    store_sources,
)
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH, DatasetRef, check_name
from conveyor.sdk.project import Project
from conveyor.store.cas import TreeEntry

MAX_MESSAGE = 64 * 1024  # bytes of a commit message
_RETRIES = 5  # puts racing on one branch: each re-merges onto the head that moved


@dataclass(frozen=True)
class Resolved:
    commit: DatasetCommitRecord
    files: dict[str, TreeEntry]


class Datasets:
    """The datasets of ``project`` (its records and store). No I/O until a call."""

    def __init__(self, project: Project, records: DatasetRepository | None = None) -> None:
        """``records``: where datasets are recorded, if not the project's records (a
        server's, scoped to one of its projects)."""
        self.project = project
        self._records = records

    @property
    def records(self) -> DatasetRepository:
        return self._records if self._records is not None else self.project.records

    @property
    def _scratch(self) -> Path:
        return self.project.state_dir / "tmp"

    # -- datasets -------------------------------------------------------------
    def create(self, name: str, description: str = "") -> DatasetRecord:
        check_name(name)
        record = DatasetRecord(name, time.time(), _bounded(description, "description"))
        self.project.ensure_state_dir()
        if not self.records.create_dataset(record):
            raise UsageError(f"dataset {name} already exists")
        return record

    def get(self, name: str) -> DatasetRecord:
        record = self.records.get_dataset(check_name(name))
        if record is None:
            raise NotFoundError(
                f"there is no dataset {name}; create it with `conveyor data create {name}`"
            )
        return record

    def summaries(self) -> list[dict[str, Any]]:
        """Every dataset with its branches, and the size and file count of its master
        head (else of its first branch with a commit)."""
        rows = []
        for d in self.records.list_datasets():
            heads = self.records.dataset_branches(d.name)
            head = heads.get(DEFAULT_BRANCH) or next((h for h in heads.values() if h), None)
            commit = self.records.dataset_commit(d.name, head) if head else None
            rows.append(
                {
                    **d.to_json(),
                    "branches": sorted(heads),
                    "size": commit.size if commit else 0,
                    "files": commit.files if commit else 0,
                }
            )
        return rows

    def branches(self, name: str) -> dict[str, str | None]:
        self.get(name)
        return self.records.dataset_branches(name)

    def delete(self, name: str) -> None:
        self.get(name)
        self.records.delete_dataset(name)

    # -- references -----------------------------------------------------------
    def resolve(self, ref: DatasetRef) -> Resolved:
        """The commit a reference names, with its files."""
        records = self.records
        self.get(ref.dataset)
        commit = self._named(ref)
        for _ in range(ref.back):
            if commit.parent is None:
                raise NotFoundError(f"{ref} goes back further than the first commit")
            parent = records.dataset_commit(ref.dataset, commit.parent)
            if parent is None:  # pragma: no cover - parents are never deleted alone
                raise NotFoundError(f"the parent of commit {commit.id} is missing")
            commit = parent
        return Resolved(commit, self.files(commit))

    def _named(self, ref: DatasetRef) -> DatasetCommitRecord:
        records = self.records
        name = ref.ref or DEFAULT_BRANCH
        branches = records.dataset_branches(ref.dataset)
        if name in branches:
            head = branches[name]
            found = records.dataset_commit(ref.dataset, head) if head else None
            if found is None:
                raise NotFoundError(f"branch {name} of {ref.dataset} has no commits yet")
            return found
        exact = records.dataset_commit(ref.dataset, name)
        if exact is not None:
            return exact
        matches = records.find_dataset_commits(ref.dataset, name) if len(name) >= 4 else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFoundError(f"{name} matches several commits of {ref.dataset}; give more")
        if ref.ref is None and not branches:
            raise NotFoundError(f"dataset {ref.dataset} has no commits yet")
        raise NotFoundError(
            f"{ref.dataset} has no branch or commit {name!r} "
            f"(`conveyor data inspect {ref.dataset}` lists its branches)"
        )

    def files(self, commit: DatasetCommitRecord) -> dict[str, TreeEntry]:
        return {e.path: e for e in self.project.store.read_tree(commit.tree)}

    # -- writing --------------------------------------------------------------
    def put(
        self,
        ref: DatasetRef,
        sources: list[str],
        message: str = "",
        append: bool = False,
        recursive: bool = False,
        progress: Progress | None = None,
        stdin: IO[bytes] | None = None,
    ) -> DatasetCommitRecord:
        """A new commit on the branch ``ref`` names: its head's files plus ``sources``
        (under the project's data lock: ``gc`` waits for its blobs to be recorded)."""
        with self.project.data_lock(exclusive=False):
            return self._put(ref, sources, message, append, recursive, progress, stdin)

    def _put(
        self,
        ref: DatasetRef,
        sources: list[str],
        message: str,
        append: bool,
        recursive: bool,
        progress: Progress | None,
        stdin: IO[bytes] | None,
    ) -> DatasetCommitRecord:
        branch = self._put_branch(ref)
        planned = plan_sources(sources, ref.path, ref.slash, recursive)
        if not planned:
            raise UsageError("nothing to put: the directories given hold no files")
        return self._put_planned(ref, branch, planned, message, append, progress, stdin)

    def put_sources(
        self, ref: DatasetRef, sources: list[Source], message: str = "", append: bool = False
    ) -> DatasetCommitRecord:
        """One commit on the branch ``ref`` names with files already placed (each
        ``Source.target`` its path in the dataset): a tree put over HTTP."""
        with self.project.data_lock(exclusive=False):
            branch = self._put_branch(ref)
            return self._put_planned(ref, branch, sources, message, append, None, None, False)

    def _put_planned(
        self,
        ref: DatasetRef,
        branch: str,
        planned: list[Source],
        message: str,
        append: bool,
        progress: Progress | None,
        stdin: IO[bytes] | None,
        cached: bool = True,
    ) -> DatasetCommitRecord:
        message = _bounded(message, "message")
        project = self.project
        try:
            digests = project.digests if cached else None
            stored = store_sources(project.store, planned, digests, self._scratch, progress, stdin)
        except BaseException:
            project.digests.flush()
            raise
        # the digests read are written while the commit is made (SQLite lets go of the
        # GIL); the cache only ever saves reads, so a crash before it lands costs nothing
        failed: list[BaseException] = []

        def flush() -> None:
            try:
                project.digests.flush()
            except BaseException as exc:  # raised here once the commit is made
                failed.append(exc)

        writer = threading.Thread(target=flush, name="conveyor-digests")
        writer.start()
        try:
            commit = self._commit_put(ref, branch, stored, message, append)
        finally:
            writer.join()
        if failed:
            raise failed[0]
        return commit

    def _commit_put(
        self, ref: DatasetRef, branch: str, stored: Stored, message: str, append: bool
    ) -> DatasetCommitRecord:
        project = self.project
        for _ in range(_RETRIES):
            parent = self.records.dataset_branches(ref.dataset).get(branch)
            head = self.records.dataset_commit(ref.dataset, parent) if parent else None
            files = merged(
                project.store, self.files(head) if head else {}, stored, append, self._scratch
            )
            commit = self._commit(ref.dataset, branch, parent, files, message, {})
            if commit is not None:
                return commit
        raise ConcurrencyError(f"{ref.dataset}@{branch} kept moving under this put; put again")

    def delete_path(self, ref: DatasetRef, message: str = "") -> DatasetCommitRecord:
        """A new commit without ``ref.path`` (a file, or a directory and all below it)."""
        branch = self._put_branch(ref)
        if not ref.path:
            raise UsageError("name the file or directory to delete: NAME@BRANCH:/PATH")
        with self.project.data_lock(exclusive=False):  # its tree is stored before recorded
            return self._delete_path(ref, branch, message)

    def _delete_path(self, ref: DatasetRef, branch: str, message: str) -> DatasetCommitRecord:
        for _ in range(_RETRIES):
            head = self.resolve(DatasetRef(ref.dataset, branch)).commit
            files = trees.removed(self.files(head), ref.path)
            message = message or f"delete /{ref.path}"
            commit = self._commit(ref.dataset, branch, head.id, files, message, {})
            if commit is not None:
                return commit
        raise ConcurrencyError(f"{ref.dataset}@{branch} kept moving; delete again")

    def _put_branch(self, ref: DatasetRef) -> str:
        self.get(ref.dataset)
        branch = ref.ref or DEFAULT_BRANCH
        branches = self.records.dataset_branches(ref.dataset)
        if ref.back or (branch not in branches and self._is_commit(ref.dataset, branch)):
            raise UsageError(
                f"{ref} names a commit, and commits never change: put to a branch instead"
            )
        return branch

    def _is_commit(self, dataset: str, name: str) -> bool:
        records = self.records
        return records.dataset_commit(dataset, name) is not None or bool(
            len(name) >= 4 and records.find_dataset_commits(dataset, name)
        )

    def commit_files(
        self,
        dataset: str,
        branch: str,
        parent: str | None,
        files: dict[str, TreeEntry],
        message: str,
        provenance: dict[str, Any],
    ) -> DatasetCommitRecord | None:
        """A commit of ``files`` (already in the store) on ``branch``, only if its head is
        still ``parent`` (None: the head moved meanwhile); a pipeline job's output."""
        with self.project.data_lock(exclusive=False):
            return self._commit(
                dataset, branch, parent, files, _bounded(message, "message"), provenance
            )

    def _commit(
        self,
        dataset: str,
        branch: str,
        parent: str | None,
        files: dict[str, TreeEntry],
        message: str,
        provenance: dict[str, Any],
    ) -> DatasetCommitRecord | None:
        clash = trees.conflicts({}, files)
        if clash is not None:
            raise UsageError(f"/{clash} would be both a file and a directory in {dataset}")
        tree = self.project.store.put_manifest(list(files.values()))  # before the record
        commit = DatasetCommitRecord(
            id=uuid.uuid4().hex,
            dataset=dataset,
            parent=parent,
            branch=branch,
            tree=tree,
            message=message,
            created_at=time.time(),
            size=sum(e.size for e in files.values()),
            files=len(files),
            provenance=provenance,
        )
        return commit if self.records.commit_dataset(commit) else None

    # -- branches -------------------------------------------------------------
    def branch(self, name: str, branch: str, head: DatasetRef | None) -> str | None:
        """Create or move ``branch`` to the commit ``head`` names (None: an empty branch)."""
        self.get(name)
        check_name(branch, "branch")
        if head is not None and head.dataset != name:
            raise UsageError(f"a branch of {name} must point at a commit of {name}")
        commit = self.resolve(head).commit.id if head is not None else None
        self.records.set_dataset_branch(name, branch, commit)
        return commit

    def delete_branch(self, name: str, branch: str) -> None:
        self.get(name)
        if not self.records.delete_dataset_branch(name, check_name(branch, "branch")):
            raise NotFoundError(f"dataset {name} has no branch {branch}")

    # -- reading --------------------------------------------------------------
    def log(self, ref: DatasetRef, limit: int) -> list[DatasetCommitRecord]:
        """The commit ``ref`` names and its ancestors, newest first."""
        commit: DatasetCommitRecord | None = self.resolve(ref).commit
        chain: list[DatasetCommitRecord] = []
        while commit is not None and len(chain) < limit:
            chain.append(commit)
            parent = commit.parent
            commit = self.records.dataset_commit(ref.dataset, parent) if parent else None
        return chain

    def inspect(self, ref: DatasetRef) -> dict[str, Any]:
        """A commit (size, file count, provenance) and where the dataset's branches are."""
        dataset = self.get(ref.dataset)
        branches = self.records.dataset_branches(ref.dataset)
        data: dict[str, Any] = {"dataset": dataset.to_json(), "branches": branches}
        if ref.ref is None and not any(branches.values()):
            data["commit"] = None
            return data
        resolved = self.resolve(ref)
        data["commit"] = resolved.commit.to_json()
        if ref.path:
            inner = trees.below(resolved.files, ref.path)
            if not inner:
                raise NotFoundError(f"there is no /{ref.path} in commit {resolved.commit.id}")
            data["path"] = {
                "path": "/" + ref.path,
                "size": sum(e.size for e in inner.values()),
                "files": len(inner),
            }
        return data

    def lineage(self, ref: DatasetRef) -> dict[str, Any]:
        """The commit a file (or directory) is read from, and the commit that brought its
        current content: walking back while the parent holds the same content there."""
        resolved = self.resolve(ref)
        inner = trees.below(resolved.files, ref.path)
        if not inner:
            raise NotFoundError(f"there is no /{ref.path} in commit {resolved.commit.id}")
        since = resolved.commit
        while since.parent is not None:
            parent = self.records.dataset_commit(ref.dataset, since.parent)
            if parent is None or trees.below(self.files(parent), ref.path) != inner:
                break
            since = parent
        return {
            "dataset": ref.dataset,
            "path": "/" + ref.path,
            "files": len(inner),
            "digest": inner[ref.path].digest if ref.path in inner else None,
            "commit": resolved.commit.to_json(),
            "introduced_by": since.to_json(),
        }

    def checkout(self, ref: DatasetRef, dest: Path) -> int:
        """Write the file or directory ``ref`` names to ``dest``; returns how many files.

        A file goes to ``dest`` (inside it when ``dest`` is a directory); a directory's
        files go below ``dest`` as they are below it in the commit."""
        resolved = self.resolve(ref)
        store = self.project.store
        if ref.path in resolved.files:
            entry = resolved.files[ref.path]
            target = dest / entry.path.rsplit("/", 1)[-1] if dest.is_dir() else dest
            store.checkout_file(entry.digest, target, "copy", entry.executable, verify=True)
            return 1
        inner = trees.below(resolved.files, ref.path)
        if ref.path and not inner:
            raise NotFoundError(f"there is no /{ref.path} in commit {resolved.commit.id}")
        cut = len(ref.path) + 1 if ref.path else 0
        for path, entry in sorted(inner.items()):
            store.checkout_file(entry.digest, dest / path[cut:], "copy", entry.executable, True)
        return len(inner)


def _bounded(text: str, what: str) -> str:
    if len(text.encode()) > MAX_MESSAGE:
        raise UsageError(f"a dataset commit {what} is at most {MAX_MESSAGE // 1024} KiB")
    if "\0" in text:
        raise UsageError(f"a dataset commit {what} cannot hold a NUL character")
    return text
