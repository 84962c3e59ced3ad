"""BLAKE3 hashing of files, with a stat-keyed cache so unchanged files are not re-read."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import blake3

from conveyor.domain.types import Digest

# from this size a file is read in large chunks, two at once, each pair then hashed on
# every core; below it one thread reads and hashes
_THREADED = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
_BIG_CHUNK = 8 * 1024 * 1024  # BLAKE3 splits a chunk this large over the cores
Signature = tuple[int, int, int, int]
"""What the cache compares before trusting a row: a file's (size, mtime_ns, ctime_ns,
inode)."""
_TABLE = "file_digests"  # "digests" before the ctime was in the key: dropped when seen
_COLUMNS = "size, mtime_ns, ctime_ns, inode, digest"
_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
# A row is "racy" (git's word) when its file's ctime is not clearly older than the moment
# its stat was read: a change later in the same tick of the filesystem's clock leaves the
# signature as it was. The tick: a few ms on Linux's own filesystems (the kernel's coarse
# clock), up to 2 s where times come in whole seconds (FAT, HFS+, ext3). A filesystem
# whose clock runs behind this machine's by more (a network server's) defeats it.
_TICK_NS = 50_000_000
_COARSE_TICK_NS = 2_000_000_000
_now = time.time_ns
# paths per query of `preload` (SQLite allows 32,766 variables since 3.32; 999 before)
_PRELOAD_BATCH = 900


def _computed(hexdigest: str) -> Digest:
    """A digest BLAKE3 just gave: 64 hex characters by construction, not matched again
    (the check costs as much as reading a small file's stat)."""
    return str.__new__(Digest, hexdigest)


def hash_bytes(data: bytes) -> Digest:
    return _computed(blake3.blake3(data).hexdigest())


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _racy(ctime_ns: int, read_at_ns: int) -> bool:
    """Whether a file changed at ``ctime_ns`` may change again unseen after a stat read at
    ``read_at_ns`` (both on the wall clock)."""
    tick = _COARSE_TICK_NS if ctime_ns % 1_000_000_000 == 0 else _TICK_NS
    return ctime_ns > read_at_ns - tick


def hash_file(path: Path | str, size: int | None = None) -> Digest:
    """The BLAKE3 digest of a file's content; large files are hashed on all cores."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return hash_fd(fd, os.fstat(fd).st_size if size is None else size)[0]
    finally:
        os.close(fd)


def hash_fd(fd: int, size: int) -> tuple[Digest, int]:
    """The digest and length of what ``fd`` holds from its offset to its end (``size``:
    the length expected). A large file is memory-mapped only under a read lease, which
    holds off every other process's write or truncation until it is hashed (a mapping
    of a file cut meanwhile dies of SIGBUS on the pages past its end); without a lease
    it is read, and a file truncated meanwhile is a short read."""
    if size >= _THREADED:
        return _hash_leased(fd) or _hash_large(fd)
    hasher = blake3.blake3()
    total = 0
    chunk = os.read(fd, min(size + 1, _CHUNK))  # a short read of a regular file is its end
    while chunk:
        hasher.update(chunk)
        total += len(chunk)
        chunk = os.read(fd, _CHUNK)
    return _computed(hasher.hexdigest()), total


def _hash_leased(fd: int) -> tuple[Digest, int] | None:
    """The file behind ``fd`` (at offset 0, opened read-only) mapped and hashed on every
    core under a read lease (fcntl(2) ``F_SETLEASE``), or None when no lease can be had:
    another process has it open for writing, the caller owns neither it nor
    ``CAP_LEASE``, or its filesystem has no leases. A writer or truncation by another
    process waits, up to the kernel's lease-break time, until the hash is done; the
    lease-break signal is set to SIGURG, which is ignored unless a handler asks for it.
    The mapping needs no copy: on two cores reading costs about a third of b3sum's
    throughput."""
    import fcntl  # here: a no-op run hashes no large file
    import mmap
    import signal

    if os.lseek(fd, 0, os.SEEK_CUR) != 0:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size  # fixed while the lease holds
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        if size:
            with mmap.mmap(fd, size, prot=mmap.PROT_READ) as mapped:
                hasher.update(mapped)
        os.lseek(fd, size, os.SEEK_SET)  # where reading it would have left the offset
        return _computed(hasher.hexdigest()), size
    finally:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def _hash_large(fd: int) -> tuple[Digest, int]:
    """Read two chunks side by side (the kernel's copy on two cores), then hash them on
    every core. A pipeline (the next chunk read while this one is hashed) measured
    slower: the copy, on one core, was its slower half."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    view = memoryview(bytearray(2 * _BIG_CHUNK))
    offset = os.lseek(fd, 0, os.SEEK_CUR)
    total = 0
    while got := _read_pair(fd, view, offset):
        hasher.update(view[:got])
        total += got
        offset += got
    os.lseek(fd, offset, os.SEEK_SET)
    return _computed(hasher.hexdigest()), total


def _read_pair(fd: int, view: memoryview, offset: int) -> int:
    """Bytes read into ``view`` from ``offset``: its first half here, its second half on
    a thread at once. Only bytes that follow each other count: after a short first
    half (the end, or a file cut meanwhile) the second half is not the file's."""
    half = len(view) // 2
    second: list[int] = []
    failed: list[BaseException] = []

    def read_second() -> None:
        try:
            second.append(os.preadv(fd, [view[half:]], offset + half))
        except BaseException as exc:  # raised below
            failed.append(exc)

    helper = threading.Thread(target=read_second)
    helper.start()
    try:
        got = os.preadv(fd, [view[:half]], offset)
    finally:
        helper.join()
    if failed:
        raise failed[0]
    return got + second[0] if got == half else got


class DigestCache:
    """Digests of files keyed by path and stat signature (size, mtime, ctime, inode), in
    a small SQLite file.

    A file whose stat signature is unchanged is not read again. The ctime is in it
    because it cannot be set back: a tool that rewrites a file and restores its mtime
    (``touch -r``, an archive's extraction, a copy keeping times) still changes it.
    Writes are batched and land on :meth:`flush`; a crash loses only cache entries,
    never correctness. A racy row (see ``_racy``: its file changed in the tick its stat
    was read) is trusted by no one, in its own run neither: the file is read again each
    time it is asked for until a read comes after its tick, and only that settled row is
    written (a step's output that the next step reads at once is read twice; a run right
    after a cold run re-reads the outputs written in its last moments). Threads may share
    one cache: a lock serialises the lookups and the batch (not the hashing).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, tuple[Signature, str]] = {}
        self._racy: set[str] = set()
        """Paths whose row here is racy: read again when asked for, never written."""
        self._read: dict[str, tuple[Signature, str]] = {}
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
            tables = {name for (name,) in db.execute(_TABLES)}
            if _TABLE not in tables:
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_TABLE} (path TEXT PRIMARY KEY, size INTEGER,"
                    " mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, digest TEXT)"
                    " WITHOUT ROWID"  # one b-tree, by path: smaller, and cheaper to write
                )
                # the rows of an older cache lack the ctime: dropped, not trusted
                db.execute("DROP TABLE IF EXISTS digests")
            self._db = db
        return self._db

    def _row(self, key: str) -> tuple[Signature, str] | None:
        """The row of ``key`` held here, else None (the lock is held)."""
        row = self._pending.get(key)
        return row if row is not None else self._read.get(key)

    def digest(self, path: Path | str, stat: os.stat_result | None = None) -> Digest:
        """The digest of ``path``, read from the cache when its stat signature matches."""
        key = os.fspath(path)
        read_at = _now()  # a given stat was read just before: the call costs microseconds
        st = stat or os.stat(key)
        with self._lock:
            row = self._row(key)
            if row is None and key not in self._absent:
                found = (
                    self._connect()
                    .execute(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE path = ?", (key,))
                    .fetchone()
                )
                if found is not None:
                    row = self._read[key] = ((found[0], found[1], found[2], found[3]), found[4])
            if key in self._racy:
                row = None  # read again (see the class's note)
        if row is not None and row[0] == signature(st):
            return Digest(row[1])
        digest = hash_file(key, st.st_size)
        self._record(key, signature(st), digest, read_at)
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
                for path, size, mtime_ns, ctime_ns, inode, digest in self._connect().execute(
                    f"SELECT path, {_COLUMNS} FROM {_TABLE} WHERE path IN ({marks})",
                    chunk,  # placeholders only
                ):
                    self._read[path] = ((size, mtime_ns, ctime_ns, inode), digest)
            self._absent.update(k for k in wanted if k not in self._read)

    def known(self, paths: Iterable[str]) -> dict[str, tuple[Signature, str]]:
        """The rows of many paths at once (a put's files), by path: (signature, digest).
        The caller compares each signature with its file's stat before trusting it."""
        keys = list(paths)
        self.preload(keys)
        with self._lock:
            found: dict[str, tuple[Signature, str]] = {}
            for key in keys:
                row = self._row(key)
                if row is not None and key not in self._racy:
                    found[key] = row
            return found

    def remember_many(self, rows: Iterable[tuple[str, Signature, str]]) -> None:
        """Record many digests read under the given signatures (one lock, one batch)."""
        read_at = _now()
        with self._lock:
            for key, seen, digest in rows:
                self._pend(key, seen, digest, read_at)

    def remember(self, path: Path | str, stat: os.stat_result, digest: str) -> None:
        """Record a digest computed elsewhere (e.g. while storing the file) under a stat
        read just before."""
        self._record(os.fspath(path), signature(stat), digest, _now())

    def _record(self, key: str, seen: Signature, digest: str, read_at: int) -> None:
        with self._lock:
            self._pend(key, seen, digest, read_at)

    def _pend(self, key: str, seen: Signature, digest: str, read_at: int) -> None:
        """A row for the next flush, marked racy or not (the lock is held)."""
        self._pending[key] = (seen, digest)
        if _racy(seen[2], read_at):
            self._racy.add(key)
        else:
            self._racy.discard(key)

    def flush(self) -> None:
        with self._lock:
            settled = [
                (key, *seen, digest)
                for key, (seen, digest) in self._pending.items()
                if key not in self._racy
            ]
            if settled:
                db = self._connect()
                with db:
                    db.execute("BEGIN")
                    db.executemany(
                        f"INSERT OR REPLACE INTO {_TABLE} (path, {_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        settled,
                    )
            self._read.update(self._pending)  # racy rows stay marked: read again if asked
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._read.clear()  # a long-lived project (the server's) holds no run's rows
            self._racy.clear()
            self._absent.clear()
            if self._db is not None:
                self._db.close()
                self._db = None
