"""Files in the project directory: resolving inputs, storing outputs, restoring them."""

from __future__ import annotations

import os
import shutil
import stat as statmod
from collections.abc import Collection, Iterable, Mapping
from functools import partial
from pathlib import Path

from conveyor.errors import StoreError
from conveyor.metadata.records import InputRecord, OutputRecord
from conveyor.spec.patterns import glob_paths, is_glob
from conveyor.store.cas import ContentStore, Manifest, Write
from conveyor.store.hashing import DigestCache


class MissingInputError(Exception):
    """A declared input path does not exist, or a declared glob matches nothing."""


class MissingOutputError(Exception):
    """A step ended without writing a declared output."""


class OutputError(Exception):
    """A declared output cannot be stored (a link out of the workspace, an OS error):
    the step fails with this message; the run goes on."""


class Workspace:
    """The project directory as seen by the runner (paths are project-relative)."""

    def __init__(self, root: Path, store: ContentStore, digests: DigestCache) -> None:
        self.root = root
        self.store = store
        self.digests = digests
        self._root_text = os.fspath(root)
        self._prefix = self._root_text.rstrip("/") + "/"

    def _abs(self, rel: str) -> str:
        # os.path.join's answer for a text path, without its checks: asked several
        # times per declared path of every step (preload, key, size, restore check)
        return rel if rel[:1] == "/" else self._prefix + rel

    # -- inputs ---------------------------------------------------------------
    def resolve_inputs(
        self,
        patterns: Iterable[str],
        optional: Collection[str] = (),
        seen: Mapping[str, os.stat_result] | None = None,
    ) -> list[InputRecord]:
        """Digests of every file the patterns name (globs expand, directories recurse).

        A glob that matches nothing or a missing path is an error unless ``optional``
        holds it: a step must not run with an input silently left out of its key.
        ``seen``: ``lstat`` results :meth:`small_files` took of plain paths a moment ago,
        in this thread (not asked again)."""
        records: dict[str, str] = {}
        seen = seen or {}
        for pattern in patterns:
            if is_glob(pattern):
                matches = glob_paths(pattern, self._root_text)
                if not matches and pattern not in optional:
                    raise MissingInputError(
                        f"declared input {pattern} matches no file (give it as "
                        f"{{path: {pattern}, optional: true}} if that is expected)"
                    )
                for match in matches:
                    self._add(match, records)
            else:
                full = self._abs(pattern)
                try:
                    # one call answers "exists?", "a directory?", the key
                    st = seen.get(pattern) or os.lstat(full)
                except (OSError, ValueError):  # as os.path.lexists: "does not exist"
                    if pattern not in optional:
                        raise MissingInputError(
                            f"declared input {pattern} does not exist"
                        ) from None
                    continue
                if statmod.S_ISREG(st.st_mode):
                    records[pattern] = self.digests.digest(full, st)
                else:
                    self._add(pattern, records)
        return [InputRecord(path, digest) for path, digest in sorted(records.items())]

    def _add(self, rel: str, records: dict[str, str]) -> None:
        full = self._abs(rel)
        if os.path.isdir(full):
            cut = self._cut(rel)
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if os.path.isabs(rel):
                        key = path
                    elif cut:
                        key = path[cut:]
                    else:
                        key = os.path.relpath(path, self._root_text)
                    records[key] = self.digests.digest(path)
        else:
            records[rel] = self.digests.digest(full)

    def _cut(self, rel: str) -> int:
        """Where a file's key starts in the paths ``os.walk`` gives below ``rel``, when
        the key is that tail (0 when it is not): with the root and ``rel`` both in normal
        form, ``os.path.relpath`` (~10 us a file of a tree) would return just that."""
        root = self._root_text
        if not os.path.isabs(root) or os.path.normpath(root) != root:
            return 0
        if os.path.normpath(rel) != rel or rel == "." or rel.split("/", 1)[0] == "..":
            return 0
        return len(self._prefix)

    def preload_digests(self, paths: Iterable[str]) -> None:
        """Read the digest cache's rows of these plain paths (globs left out) in a few
        queries, before the steps ask for them one at a time."""
        self.digests.preload(self._abs(rel) for rel in paths if not is_glob(rel))

    def small_files(self, paths: Iterable[str], limit: int) -> dict[str, os.stat_result] | None:
        """The ``lstat`` of each path when each is a plain file (or absent) and they hold
        fewer than ``limit`` bytes in all; None when one is a glob, a directory or a link
        (which can hold any amount), or they hold more."""
        found: dict[str, os.stat_result] = {}
        total = 0
        for rel in paths:
            if is_glob(rel):
                return None
            try:
                st = os.lstat(self._abs(rel))
            except OSError:
                continue  # missing: the step's error is quick to find
            if not statmod.S_ISREG(st.st_mode):
                return None
            total += st.st_size
            found[rel] = st
        return found if total < limit else None

    def exists(self, rel: str) -> bool:
        """Whether the workspace holds something (a link too) at ``rel``."""
        return os.path.lexists(self._abs(rel))

    # -- outputs --------------------------------------------------------------
    def clear_outputs(self, outputs: Iterable[str]) -> None:
        """Remove declared outputs before a step runs, so no stale file passes as new."""
        for rel in outputs:
            full = self._abs(rel)
            try:  # one lstat answers "there?" and "a directory (not a link to one)?"
                st = os.lstat(full)
            except (OSError, ValueError):  # as os.path.lexists: nothing to remove
                continue
            if statmod.S_ISDIR(st.st_mode):
                shutil.rmtree(full)
            else:
                os.unlink(full)

    def store_outputs(
        self, outputs: Iterable[str], later: list[Write] | None = None
    ) -> list[OutputRecord]:
        """Store each declared output; links inside a tree are stored as links.

        With ``later``, the blobs of small plain files are read now and their writes
        appended to it (see :meth:`ContentStore.put_file_later`).
        Raises MissingOutputError, or OutputError for anything else that stops an
        output from being stored (never an OSError: that would end the whole run).
        """
        records = []
        try:
            with self.store.uploads():  # an object store's uploads go in parallel, at the end
                for rel in outputs:
                    full = self._abs(rel)
                    try:
                        records.append(self._store_output(rel, full, later))
                    except (OSError, StoreError) as exc:
                        raise _cannot_store(rel, exc) from exc
        except (OSError, StoreError) as exc:  # raised by the uploads
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputError(f"cannot upload the outputs: {detail}") from exc
        return records

    def _store_output(self, rel: str, full: str, later: list[Write] | None) -> OutputRecord:
        try:
            st = os.lstat(full)
        except OSError:
            raise MissingOutputError(rel) from None
        mode = st.st_mode
        if statmod.S_ISLNK(mode):  # a declared output that is a link: stored as what it names
            target = os.readlink(full)
            if not os.path.exists(full):
                raise StoreError(f"{rel} is a dangling symbolic link (to {target})")
            root = os.path.realpath(self.root)
            if os.path.commonpath([root, os.path.realpath(full)]) != root:
                raise StoreError(f"{rel} is a symbolic link to {target}, outside the workspace")
            st = os.stat(full)
            mode = st.st_mode
        if statmod.S_ISDIR(mode):
            digest, size = self.store.put_tree(Path(full), self.digests, boundary=self.root)
            return OutputRecord(rel, digest, "tree", size)
        if statmod.S_ISREG(mode) and later is not None:
            digest, size, write = self.store.put_file_later(full, self.digests, st)
            if write is not None:
                later.append(partial(_named, rel, write))
            return OutputRecord(rel, digest, "file", size)
        if statmod.S_ISREG(mode):
            digest, size = self.store.put_file(full, self.digests)
            return OutputRecord(rel, digest, "file", size)
        raise StoreError(f"{rel} is not a regular file or directory")

    # -- restoring ------------------------------------------------------------
    def restore(self, outputs: Iterable[OutputRecord]) -> int:
        """Make the workspace hold these outputs; returns how many files were written.

        Raises StoreError when a blob is missing or damaged, or the workspace refuses
        a write (an OSError): the caller runs the step instead of serving it.
        """
        written = 0
        for output in outputs:
            full = Path(self._abs(output.path))
            try:
                written += self._restore_one(output, full)
            except OSError as exc:
                raise StoreError(f"cannot restore {output.path}: {exc.strerror or exc}") from exc
        return written

    def _restore_one(self, output: OutputRecord, full: Path) -> int:
        if output.kind == "tree":
            return self._restore_tree(output, full)
        if self._matches(full, output.digest):
            return 0
        if full.is_dir() and not full.is_symlink():
            shutil.rmtree(full)
        self.store.checkout_file(output.digest, full)
        self._check(full, output.digest)
        return 1

    def _check(self, path: Path, digest: str) -> None:
        """A restored file must hash to its name: a damaged blob is quarantined and the
        restore refused (the step runs again). The hash is the one the digest cache
        takes of every restored file anyway, so this costs nothing extra."""
        if self.digests.digest(path) != digest:
            path.unlink(missing_ok=True)
            if not self.store.intact(digest):  # not a file changed under our feet
                self.store.quarantine(digest)
                raise StoreError(f"blob {digest[:12]} for {path} is damaged; it was quarantined")
            raise StoreError(f"{path} changed while it was restored")

    def holds(self, output: OutputRecord) -> bool:
        """Whether the workspace already holds ``output`` exactly (a restore would write
        nothing), by the stat-keyed digest cache: cheap for an unchanged workspace."""
        full = self._abs(output.path)  # the digest cache's key, as inputs spell it
        try:
            if output.kind == "tree":
                return self._holds_tree(self.store.read_manifest(output.digest), Path(full))
            return self._matches(full, output.digest)
        except (OSError, StoreError):
            return False

    def _holds_tree(self, tree: Manifest, full: Path) -> bool:
        if not (
            full.is_dir()
            and not full.is_symlink()
            and all(self._matches(full / e.path, e.digest) for e in tree.files)
            and all(_links_to(full / p, t) for p, t in tree.links.items())
            and all((full / d).is_dir() for d in tree.dirs)
        ):
            return False
        count = sum(len(files) + len(dirs) for _, dirs, files in os.walk(full))
        return count == len(tree.files) + len(tree.links) + _dir_count(tree)

    def _restore_tree(self, output: OutputRecord, full: Path) -> int:
        tree = self.store.read_manifest(output.digest)
        entries = tree.files
        if self._holds_tree(tree, full):
            return 0
        self.store.checkout_tree(output.digest, full)
        for entry in entries:
            self._check(full / entry.path, entry.digest)
        return len(entries) + len(tree.links)

    def _matches(self, path: Path | str, digest: str) -> bool:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not statmod.S_ISREG(st.st_mode):
            return False
        return self.digests.digest(path, st) == digest


def _cannot_store(rel: str, exc: OSError | StoreError) -> OutputError:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return OutputError(f"cannot store the output {rel}: {detail}")


def _named(rel: str, write: Write) -> None:
    """A blob write left for later, whose failure says which output it was for, as a
    write made at once does."""
    try:
        write()
    except (OSError, StoreError) as exc:
        raise _cannot_store(rel, exc) from exc


def _links_to(path: Path, target: str) -> bool:
    return path.is_symlink() and os.readlink(path) == target


def _dir_count(tree: Manifest) -> int:
    """Directories below a tree's root: those holding something, and the empty ones."""
    held = {
        str(p) for item in (*(f.path for f in tree.files), *tree.links) for p in Path(item).parents
    }
    held.discard(".")
    return len(held | set(tree.dirs))
