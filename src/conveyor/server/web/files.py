"""A run's output files for the pages: as a tree of directories, read (bounded and
masked) for a preview, and compared across runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.server.masking import Masker, masked_chunks, scan_file

TREE_FILES = 5000  # files of a run drawn in its tree (the API lists them all)


@dataclass
class Folder:
    name: str
    path: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.files) + sum(f.count for f in self.folders.values())

    def sorted_folders(self) -> list[Folder]:
        return [self.folders[k] for k in sorted(self.folders)]


def tree(files: list[dict[str, Any]]) -> Folder:
    """The run's files (dicts with ``path``) nested by directory, sorted by name."""
    root = Folder("", "")
    for item in sorted(files, key=lambda f: str(f["path"])):
        *dirs, name = str(item["path"]).split("/")
        here = root
        for part in dirs:
            if part not in here.folders:
                here.folders[part] = Folder(part, f"{here.path}{part}/")
            here = here.folders[part]
        here.files.append({**item, "name": name})
    return root


@dataclass(frozen=True)
class Head:
    data: bytes  # the first bytes, masked
    truncated: bool  # the file is longer
    withheld: bool  # a binary file holding a secret: nothing of it is shown
    masked: bool


def read_head(source: Path, masker: Masker, limit: int) -> Head:
    """The first ``limit`` bytes of a stored file, with every form of the project's
    secrets masked (the whole file is scanned, so a secret past the limit or across it
    is found too); nothing of a binary file that holds one."""
    found, text = scan_file(source, masker)
    if found and not text:
        return Head(b"", False, True, True)
    if not found:
        with open(source, "rb") as handle:
            data = handle.read(limit + 1)
        return Head(data[:limit], len(data) > limit, False, False)
    kept = bytearray()
    chunks = masked_chunks(source, masker)
    try:
        for chunk in chunks:
            kept += chunk
            if len(kept) > limit:
                break
    finally:
        chunks.close()  # closes the file now, not when collected
    return Head(bytes(kept[:limit]), len(kept) > limit, False, True)


MAX_COMPARED = 8  # runs side by side


def compare(
    runs: list[Any], files: list[list[dict[str, Any]]], durations: list[str]
) -> dict[str, Any]:
    """Runs side by side: their parameters (a row per name, marked where they differ)
    and their changed outputs (a path whose digest is not the same in every run, or
    that some run lacks); ``same``: how many paths are identical everywhere."""
    names = sorted({k for r in runs for k in r.params})
    params = []
    for name in names:
        values = [str(r.params[name]) if name in r.params else None for r in runs]
        params.append({"name": name, "cells": values, "differs": len(set(values)) > 1})
    digests = [{str(f["path"]): str(f["digest"]) for f in found} for found in files]
    paths = sorted(set().union(*digests)) if digests else []
    changed = []
    for path in paths:
        row = [d.get(path) for d in digests]
        if len(set(row)) > 1:
            changed.append({"path": path, "digests": row})
    return {
        "runs": runs,
        "durations": durations,
        "params": params,
        "changed": changed,
        "same": len(paths) - len(changed),
    }
