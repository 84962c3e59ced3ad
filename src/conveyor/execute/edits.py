"""Declared outputs edited by hand since a run made them.

Before a cache restore or a step run replaces a declared output, a file there that no
recorded run produced at that path, changed after the step last ended (someone edited
it), is copied aside, so the edit is never silently lost. A path no run has produced yet
is not checked: there is nothing to compare it with. A file older than the step's last
end is what a failed or cancelled attempt left, not an edit.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from conveyor.errors import StoreError
from conveyor.execute.workspace import Workspace
from conveyor.metadata.repository import MetadataRepository
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache

_TREES_CHECKED = 5  # the newest distinct directory outputs a file is compared with


class KeepError(Exception):
    """A hand-edited output could not be copied aside: it must not be replaced."""


def keep_edited(
    workspace: Workspace,
    records: MetadataRepository,
    step_id: str,
    outputs: Iterable[str],
    keep_dir: Path,
) -> list[str]:
    """Copy aside the step's outputs edited by hand; returns a warning for each."""
    outputs = [rel for rel in outputs if os.path.lexists(workspace.root / rel)]
    if not outputs:  # nothing there to have been edited (a cold run): no records read
        return []
    last = records.step_history(step_id, limit=1)
    # files older than the step's last end are its own (e.g. a failed attempt's)
    since = (last[0].ended_at or time.time()) if last else 0.0
    root = workspace.root
    edited = edited_files(root, outputs, records, workspace.store, workspace.digests, since)
    try:
        kept = keep_copies(root, edited, keep_dir)
    except OSError as exc:
        raise KeepError(
            f"{exc.filename}: cannot keep a copy of a declared output edited by hand "
            f"({exc.strerror}); move it away, then run again"
        ) from None
    return [
        f"{rel} was edited since the run that made it; step {step_id} replaces it, "
        f"and the edited file is kept at {os.path.relpath(copy, root)}"
        for rel, copy in zip(edited, kept, strict=True)
    ]


def edited_files(
    root: Path,
    outputs: Iterable[str],
    records: MetadataRepository,
    store: ContentStore,
    digests: DigestCache,
    since: float,
) -> list[str]:
    """Project-relative files under ``outputs`` that differ from whatever runs made there
    and were changed after ``since`` (when the step last ended)."""
    edited: list[str] = []
    for rel in outputs:
        full = root / rel
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):  # gone, or a parent is now a file
            continue
        made = records.outputs_at_path(rel)
        if not made:
            continue
        if stat.S_ISREG(st.st_mode):
            if st.st_mtime > since and digests.digest(full, st) not in {o.digest for *_, o in made}:
                edited.append(rel)
        elif stat.S_ISDIR(st.st_mode):
            trees = list(dict.fromkeys(o.digest for _, _, o in made if o.kind == "tree"))
            edited += _edited_in_tree(root, rel, trees[:_TREES_CHECKED], store, digests, since)
    return edited


def _edited_in_tree(
    root: Path, rel: str, trees: list[str], store: ContentStore, digests: DigestCache, since: float
) -> list[str]:
    known: dict[str, set[str]] = {}  # file inside -> digests runs made there
    for tree in trees:
        try:
            entries = store.read_tree(tree)
        except StoreError:
            continue
        for entry in entries:
            known.setdefault(entry.path, set()).add(entry.digest)
    edited = []
    for dirpath, dirnames, filenames in os.walk(root / rel):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime <= since:
                continue
            inner = full.relative_to(root / rel).as_posix()
            if digests.digest(full, st) not in known.get(inner, set()):
                edited.append(f"{rel}/{inner}")
    return edited


def keep_copies(root: Path, files: Iterable[str], keep_dir: Path) -> list[Path]:
    """Copy each file to the same relative path under ``keep_dir``; returns the copies."""
    copies = []
    for rel in files:
        target = keep_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target, follow_symlinks=False)
        copies.append(target)
    return copies
