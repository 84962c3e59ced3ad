"""BLAKE3 hashing of files, with a stat-keyed cache so unchanged files are not re-read."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import blake3

from conveyor.domain.types import Digest

# below this size one read beats mmap + threads
_MMAP_THRESHOLD = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
Signature = tuple[int, int, int]
"""What the cache compares before trusting a row: a file's (size, mtime_ns, inode)."""
# paths per query of `preload` (SQLite allows 32,766 variables since 3.32; 999 before)
_PRELOAD_BATCH = 900


def _computed(hexdigest: str) -> Digest:
    """A digest BLAKE3 just gave: 64 hex characters by construction, not matched again
    (the check costs as much as reading a small file's stat)."""
    return str.__new__(Digest, hexdigest)


def hash_bytes(data: bytes) -> Digest:
    return _computed(blake3.blake3(data).hexdigest())


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def hash_file(path: Path | str, size: int | None = None) -> Digest:
    """The BLAKE3 digest of a file's content; large files are hashed on all cores."""
    if size is None:
        size = os.stat(path).st_size
    if size >= _MMAP_THRESHOLD:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return _computed(hasher.hexdigest())
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return _computed(hasher.hexdigest())


class DigestCache:
    """Digests of files keyed by (path, size, mtime, inode), in a small SQLite file.

    A file whose stat signature is unchanged is not read again. Writes are batched and
    land on :meth:`flush`; a crash loses only cache entries, never correctness. Threads
    may share one cache: a lock serialises the lookups and the batch (not the hashing).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, tuple[str, int, int, int, str]] = {}
        self._read: dict[str, tuple[int, int, int, str]] = {}
        """Rows already read or written here: a file asked about again (a step's output,
        then the next step's input) costs no query; its stat is still compared."""
        self._absent: set[str] = set()
        """Paths a :meth:`preload` found no row for: asked about, they are hashed without
        a query of their own (a cold run's inputs). A row another process writes
        meanwhile is only missed: the file is hashed, never trusted unread."""
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER,"
                " mtime_ns INTEGER, inode INTEGER, digest TEXT)"
            )
            self._db = db
        return self._db

    def digest(self, path: Path | str, stat: os.stat_result | None = None) -> Digest:
        """The digest of ``path``, read from the cache when its stat signature matches."""
        key = os.fspath(path)
        st = stat or os.stat(key)
        with self._lock:
            pending = self._pending.get(key)
            row = pending[1:] if pending is not None else self._read.get(key)
            if row is None and key not in self._absent:
                row = (
                    self._connect()
                    .execute(
                        "SELECT size, mtime_ns, inode, digest FROM digests WHERE path = ?", (key,)
                    )
                    .fetchone()
                )
                if row is not None:
                    self._read[key] = row
        if row is not None and (row[0], row[1], row[2]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return Digest(row[3])
        digest = hash_file(key, st.st_size)
        self.remember(key, st, digest)
        return digest

    def preload(self, paths: Iterable[Path | str]) -> None:
        """Read the rows of many paths at once (a run's declared inputs and outputs): one
        query per ``_PRELOAD_BATCH`` paths instead of one per file. Paths without a row
        cost nothing; a row read is still compared with the file's stat when asked for."""
        keys = list(dict.fromkeys(os.fspath(p) for p in paths))
        with self._lock:
            wanted = [k for k in keys if k not in self._read and k not in self._pending]
            for start in range(0, len(wanted), _PRELOAD_BATCH):
                chunk = wanted[start : start + _PRELOAD_BATCH]
                marks = ",".join("?" * len(chunk))
                for path, *row in self._connect().execute(
                    "SELECT path, size, mtime_ns, inode, digest FROM digests"
                    f" WHERE path IN ({marks})",  # placeholders only
                    chunk,
                ):
                    self._read[path] = (row[0], row[1], row[2], row[3])
            self._absent.update(k for k in wanted if k not in self._read)

    def known(self, paths: Iterable[str]) -> dict[str, tuple[Signature, str]]:
        """The rows of many paths at once (a put's files), by path: (signature, digest).
        The caller compares each signature with its file's stat before trusting it."""
        keys = list(paths)
        self.preload(keys)
        with self._lock:
            found: dict[str, tuple[Signature, str]] = {}
            for key in keys:
                pending = self._pending.get(key)
                row = pending[1:] if pending is not None else self._read.get(key)
                if row is not None:
                    found[key] = ((row[0], row[1], row[2]), row[3])
            return found

    def remember_many(self, rows: Iterable[tuple[str, Signature, str]]) -> None:
        """Record many digests read under the given signatures (one lock, one batch)."""
        with self._lock:
            for key, (size, mtime_ns, inode), digest in rows:
                self._pending[key] = (key, size, mtime_ns, inode, digest)

    def remember(self, path: Path | str, stat: os.stat_result, digest: str) -> None:
        """Record a digest computed elsewhere (e.g. while storing the file)."""
        key = os.fspath(path)
        with self._lock:
            self._pending[key] = (key, stat.st_size, stat.st_mtime_ns, stat.st_ino, digest)

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            db = self._connect()
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)",
                    list(self._pending.values()),
                )
            self._read.update((key, row[1:]) for key, row in self._pending.items())
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._read.clear()  # a long-lived project (the server's) holds no run's rows
            self._absent.clear()
            if self._db is not None:
                self._db.close()
                self._db = None
