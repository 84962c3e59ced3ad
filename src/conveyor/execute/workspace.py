"""Files in the project directory: resolving inputs, storing outputs, restoring them."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

from conveyor.metadata.records import InputRecord, OutputRecord
from conveyor.plan.graph import is_glob
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache


class MissingInputError(Exception):
    """A declared input path does not exist, or a declared glob matches nothing."""


class MissingOutputError(Exception):
    """A step ended without writing a declared output."""


class Workspace:
    """The project directory as seen by the runner (paths are project-relative)."""

    def __init__(self, root: Path, store: ContentStore, digests: DigestCache) -> None:
        self.root = root
        self.store = store
        self.digests = digests
        self._root_text = os.fspath(root)

    def _abs(self, rel: str) -> str:
        return rel if os.path.isabs(rel) else os.path.join(self._root_text, rel)

    # -- inputs ---------------------------------------------------------------
    def resolve_inputs(
        self, patterns: Iterable[str], optional: Collection[str] = ()
    ) -> list[InputRecord]:
        """Digests of every file the patterns name (globs expand, directories recurse).

        A glob that matches nothing or a missing path is an error unless ``optional``
        holds it: a step must not run with an input silently left out of its key."""
        records: dict[str, str] = {}
        for pattern in patterns:
            if is_glob(pattern):
                matches = sorted(glob.glob(pattern, root_dir=self._root_text, recursive=True))
                if not matches and pattern not in optional:
                    raise MissingInputError(
                        f"declared input {pattern} matches no file (give it as "
                        f"{{path: {pattern}, optional: true}} if that is expected)"
                    )
                for match in matches:
                    self._add(match, records)
            elif os.path.lexists(self._abs(pattern)):
                self._add(pattern, records)
            elif pattern not in optional:
                raise MissingInputError(f"declared input {pattern} does not exist")
        return [InputRecord(path, digest) for path, digest in sorted(records.items())]

    def _add(self, rel: str, records: dict[str, str]) -> None:
        full = self._abs(rel)
        if os.path.isdir(full):
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    key = os.path.relpath(path, self._root_text) if not os.path.isabs(rel) else path
                    records[key] = self.digests.digest(path)
        else:
            records[rel] = self.digests.digest(full)

    # -- outputs --------------------------------------------------------------
    def clear_outputs(self, outputs: Iterable[str]) -> None:
        """Remove declared outputs before a step runs, so no stale file passes as new."""
        for rel in outputs:
            full = self._abs(rel)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            elif os.path.lexists(full):
                os.unlink(full)

    def store_outputs(self, outputs: Iterable[str]) -> list[OutputRecord]:
        records = []
        for rel in outputs:
            full = Path(self._abs(rel))
            if full.is_dir():
                digest, size = self.store.put_tree(full, self.digests)
                records.append(OutputRecord(rel, digest, "tree", size))
            elif full.is_file():
                digest, size = self.store.put_file(full, self.digests)
                records.append(OutputRecord(rel, digest, "file", size))
            else:
                raise MissingOutputError(rel)
        return records

    # -- restoring ------------------------------------------------------------
    def restore(self, outputs: Iterable[OutputRecord]) -> int:
        """Make the workspace hold these outputs; returns how many files were written."""
        written = 0
        for output in outputs:
            full = Path(self._abs(output.path))
            if output.kind == "tree":
                written += self._restore_tree(output, full)
            elif not self._matches(full, output.digest):
                if full.is_dir():
                    shutil.rmtree(full)
                self.store.checkout_file(output.digest, full)
                self.digests.digest(full)
                written += 1
        return written

    def _restore_tree(self, output: OutputRecord, full: Path) -> int:
        entries = self.store.read_tree(output.digest)
        if full.is_dir() and all(self._matches(full / e.path, e.digest) for e in entries):
            count = sum(len(files) for _, _, files in os.walk(full))
            if count == len(entries):
                return 0
        self.store.checkout_tree(output.digest, full)
        for entry in entries:
            self.digests.digest(full / entry.path)
        return len(entries)

    def _matches(self, path: Path, digest: str) -> bool:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        import stat as statmod

        if not statmod.S_ISREG(st.st_mode):
            return False
        return self.digests.digest(path, st) == digest
