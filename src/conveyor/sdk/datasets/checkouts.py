"""A pipeline's ``datasets:``: each ref resolved to one commit and checked out at its path
of the workspace before the run, so that its steps read them as ordinary files (their
digests key the cache) and the run records which commit it read (lineage).

A path is replaced wholesale on every run, so only a directory that an earlier run
checked out (listed by absolute path in ``<state dir>/datasets.json``) or no file at all
may be there: a directory of the user's is never deleted.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import NotFoundError, UsageError
from conveyor.metadata.datasets import DatasetReadRecord
from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.refs import DatasetRef, parse_ref
from conveyor.sdk.datasets.service import Datasets

_MADE = "datasets.json"  # directories Conveyor checked out, and their commits


@dataclass(frozen=True)
class CheckedOut:
    path: str
    ref: str
    dataset: str
    commit: str
    files: int

    def record(self, run_id: str) -> DatasetReadRecord:
        return DatasetReadRecord(run_id, self.path, self.dataset, self.commit, self.ref)


def check_out(
    datasets: Datasets, wanted: Sequence[tuple[str, str]], pins: Mapping[str, str] | None = None
) -> list[CheckedOut]:
    """Resolve every ref first (a bad one changes nothing), then replace each path with
    its commit's files (the directory the ref's path names, or the whole commit).
    ``pins``: path -> the commit to read there whatever its ref names now (a rerun reads
    what the original run read)."""
    project = datasets.project
    refs: list[tuple[str, str, DatasetRef]] = []
    for path, text in wanted:
        try:
            ref = parse_ref(text)
        except UsageError as exc:
            raise UsageError(f"datasets: {path}: {exc}") from None
        if pins and path in pins:
            ref = DatasetRef(ref.dataset, pins[path], path=ref.path, slash=ref.slash)
        refs.append((path, text, ref))
    made = _made(project.state_dir)
    resolved = []
    for path, text, ref in refs:
        target = project.root / path
        _inside(project.root, path)
        if (target.exists() or target.is_symlink()) and _key(target) not in made:
            raise UsageError(
                f"datasets: {path} already exists and no run checked it out; move it away "
                "or pick another path (Conveyor replaces that directory on every run)"
            )
        found = datasets.resolve(ref)
        if ref.path and ref.path not in found.files and not trees.below(found.files, ref.path):
            raise NotFoundError(f"datasets: {path}: there is no /{ref.path} in {text}")
        resolved.append((path, text, ref, found.commit.id))
    done = []
    project.ensure_state_dir()
    for path, text, ref, commit in resolved:
        target = project.root / path
        pinned = DatasetRef(ref.dataset, commit, path=ref.path, slash=ref.slash)
        made[_key(target)] = commit
        _save(project.state_dir, made)  # before the first file: a crash leaves it ours
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        files = datasets.checkout(pinned, target)
        done.append(CheckedOut(path, text, ref.dataset, commit, files))
    return done


def _inside(root: Path, path: str) -> None:
    """No directory on the way to ``path`` may be a link (it could lead out of the
    project, where the checkout would replace someone's files)."""
    at = root
    for part in path.split("/")[:-1]:
        at = at / part
        if at.is_symlink() or (at.exists() and not at.is_dir()):
            raise UsageError(
                f"datasets: {path}: {at.relative_to(root)} is a link or a file; a dataset "
                "is checked out only below real directories of the project"
            )


def _key(target: Path) -> str:
    """A checkout's key: its absolute path (a rerun's worktree is another directory)."""
    return os.path.abspath(target)


def _made(state_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((state_dir / _MADE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save(state_dir: Path, made: dict[str, str]) -> None:
    tmp = state_dir / f"{_MADE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(made, sort_keys=True), encoding="utf-8")
    os.replace(tmp, state_dir / _MADE)
