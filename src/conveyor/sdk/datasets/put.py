"""A put: files from the host (or stdin) -> blobs in the store -> the files of a new commit.

Where each source lands follows ``pachctl put file``: a file at the given path (inside
it when the path ends with ``/`` or several sources are given), else at its base name; a
directory (``--recursive``) has its contents under the given path, else under its name.
Links inside a directory are read as the file they name only while that file lies inside
the directory: a put never follows a link out of the tree it was given.
"""

from __future__ import annotations

import os
import posixpath
import stat as statmod
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from conveyor.errors import UsageError
from conveyor.sdk.datasets.pool import in_order
from conveyor.sdk.datasets.refs import MAX_PATH, check_path
from conveyor.store.cas import ContentStore, TreeEntry
from conveyor.store.hashing import DigestCache, Signature

Progress = Callable[[int, int, int], None]
"""(files stored, files in the put, bytes stored)"""
STDIN = "-"
_THREADS = 4  # file reads overlap hashing; the hash of a large file uses every core
_BATCH = 64  # files per task given to a thread
# a file changed less than this before the put is read and stored but not vouched for to
# the digest cache: a change in the same tick of the filesystem's clock (a few ms; a
# second or two on some filesystems) as the stat it was read under would leave its
# signature unchanged, and the cache's digest would no longer be its content
_SETTLE_NS = 2_000_000_000


def _settled_before() -> int:
    """A ctime (ns) before which a file's signature tells every later change."""
    return time.time_ns() - _SETTLE_NS


_Row = tuple[str, Signature, str]  # a digest cache row: path, signature, digest


@dataclass(frozen=True)
class Source:
    target: str  # the path in the dataset
    file: str | None  # None: standard input (a string: a Path per file costs more)


def plan_sources(given: list[str], path: str, slash: bool, recursive: bool) -> list[Source]:
    """Every file a put will store, with its place in the dataset."""
    into = slash or len(given) > 1 or not path
    sources: list[Source] = []
    for item in given:
        if item == STDIN:
            if not path or into:
                raise UsageError(
                    "a put from standard input ('-') needs one file path: NAME@BRANCH:/PATH"
                )
            sources.append(Source(path, None))
            continue
        source = Path(item)
        try:
            st = source.stat()
        except OSError as exc:
            raise UsageError(f"{item}: cannot read it ({exc.strerror})") from None
        name = source.resolve().name if item in (".", "..") else source.name
        if statmod.S_ISDIR(st.st_mode):
            if not recursive:
                raise UsageError(f"{item} is a directory: add --recursive (-r) to put its files")
            base = path if path and not (len(given) > 1 or slash) else _join(path, name)
            sources.extend(_walk(source, base))
        elif statmod.S_ISREG(st.st_mode):
            target = check_path(_join(path, name) if into else path)
            sources.append(Source(target, os.fspath(source)))
        else:
            raise UsageError(f"{item} is not a regular file or a directory")
    return sources


def _join(path: str, name: str) -> str:
    return posixpath.join(path, name) if path else name


def _walk(directory: Path, base: str) -> Iterator[Source]:
    """Files below ``directory`` in path order, by ``scandir`` (no link is followed while
    walking; a name from the filesystem holds no ``/`` or NUL, so only its length is
    checked)."""
    fence = os.path.realpath(directory)
    prefix = f"{base}/" if base else ""
    for rel, entry in sorted(_entries(os.fspath(directory), ""), key=lambda item: item[0]):
        target = prefix + rel
        if len(target.encode()) > MAX_PATH:
            raise UsageError(f"{entry.path}: a dataset path is at most {MAX_PATH} bytes long")
        if entry.is_file(follow_symlinks=False):
            yield Source(target, entry.path)
        elif entry.is_symlink():
            resolved = os.path.realpath(entry.path)
            if os.path.commonpath([fence, resolved]) != fence:
                raise UsageError(
                    f"{entry.path} is a link to {os.readlink(entry.path)}, outside {directory}: "
                    "a put does not follow links out of the directory it was given"
                )
            if not os.path.isfile(resolved):
                raise UsageError(f"{entry.path} is a link to something other than a file")
            yield Source(target, resolved)
        else:
            raise UsageError(f"{entry.path} is not a regular file, link or directory")


def _entries(directory: str, rel: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(path relative to the top, entry) of everything but directories, recursively;
    empty directories are skipped (Pachyderm keeps none)."""
    with os.scandir(directory) as found:
        for entry in found:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _entries(entry.path, name)
            else:
                yield name, entry


@dataclass
class Stored:
    """The blobs of a put, before they join a commit."""

    entries: list[tuple[str, TreeEntry]]
    bytes: int


def store_sources(
    store: ContentStore,
    sources: list[Source],
    digests: DigestCache | None,
    scratch: Path,
    progress: Progress | None = None,
    stdin: IO[bytes] | None = None,
) -> Stored:
    """Store every source's content (already stored content costs its hashing only;
    ``digests``: the cache of files' digests, None for files that are not the user's,
    such as a request's scratch files, whose paths come back with other content).

    Files go to a pool of threads in batches: each is opened, stat'ed and read once
    (:meth:`ContentStore.ingest`), BLAKE3 hashing them with the GIL released, so the
    cores hash side by side. Each task reads its files' cache rows in one query (on the
    pool, not before it), and the digests read are written back in one batch, by the
    caller's ``flush`` (not those of files changed in the last ``_SETTLE_NS``)."""
    total = len(sources)
    settled = _settled_before()

    def batch(part: list[Source]) -> tuple[list[tuple[str, TreeEntry]], list[_Row]]:
        entries: list[tuple[str, TreeEntry]] = []
        rows: list[_Row] = []
        known = digests.known([s.file for s in part if s.file is not None]) if digests else {}
        for source in part:
            file = source.file
            if file is None:
                entry = _from_stream(store, stdin or sys.stdin.buffer, scratch, source)
                entries.append((source.target, entry))
                continue
            got = store.ingest(file, known.get(file))
            entries.append((source.target, TreeEntry(source.target, *got[:3])))
            if got.read is not None and got.read[2] < settled:  # its ctime
                rows.append((file, got.read, got.digest))
        return entries, rows

    # batches, not files, go to the threads: a hand-over per small file costs more than it
    batches = [sources[i : i + _BATCH] for i in range(0, total, _BATCH)]
    entries: list[tuple[str, TreeEntry]] = []
    done = stored_bytes = 0
    for part, rows in in_order(batch, batches, _THREADS):
        entries.extend(part)
        if digests is not None and rows:
            digests.remember_many(rows)
        done += len(part)
        stored_bytes += sum(entry.size for _, entry in part)
        if progress is not None:
            progress(done, total, stored_bytes)
    return Stored(entries, stored_bytes)


def _from_stream(
    store: ContentStore, stream: IO[bytes], scratch: Path, source: Source
) -> TreeEntry:
    scratch.mkdir(parents=True, exist_ok=True)
    import shutil  # here: a put of files never needs them
    import tempfile

    with tempfile.NamedTemporaryFile(dir=scratch, prefix="stdin-") as tmp:
        shutil.copyfileobj(stream, tmp, 1024 * 1024)  # constant memory, any size
        tmp.flush()
        digest, size = store.put_file(Path(tmp.name))
    return TreeEntry(source.target, digest, size)


def merged(
    store: ContentStore,
    files: Mapping[str, TreeEntry],
    stored: Stored,
    append: bool,
    scratch: Path,
) -> dict[str, TreeEntry]:
    """The files of the new commit: the parent's, each put path replaced (Pachyderm 2's
    default) or, with ``append``, the parent's content followed by the new one."""
    result = dict(files)
    for target, entry in stored.entries:
        previous = result.get(target)
        if append and previous is not None:
            entry = _appended(store, previous, entry, scratch)
        result[target] = entry
    return result


def _appended(store: ContentStore, old: TreeEntry, new: TreeEntry, scratch: Path) -> TreeEntry:
    scratch.mkdir(parents=True, exist_ok=True)
    import shutil
    import tempfile

    with tempfile.NamedTemporaryFile(dir=scratch, prefix="append-") as tmp:
        for digest in (old.digest, new.digest):
            with open(store.path_of(digest), "rb") as blob:
                shutil.copyfileobj(blob, tmp, 1024 * 1024)
        tmp.flush()
        digest, size = store.put_file(Path(tmp.name))
    return TreeEntry(old.path, digest, size, old.executable or new.executable)
