"""The content-addressed store and the stat-keyed digest cache, on temp directories."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from conveyor.domain.types import Digest
from conveyor.errors import StoreError
from conveyor.store import hashing
from conveyor.store.cas import ContentStore, TreeEntry
from conveyor.store.hashing import DigestCache, hash_bytes, hash_file


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def blobs(store: ContentStore) -> list[Path]:
    objects = store.root / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


# -- construction ------------------------------------------------------------------------


def test_constructing_a_store_does_no_io(tmp_path: Path) -> None:
    ContentStore(tmp_path / "store")
    assert not (tmp_path / "store").exists()


# -- put_bytes / put_file ------------------------------------------------------------------


def test_put_bytes_digest_is_blake3_of_the_content(store: ContentStore) -> None:
    data = b"hello, conveyor\n"
    digest = store.put_bytes(data)
    assert digest == b3(data)
    assert isinstance(digest, Digest)
    assert store.has(digest)
    assert store.read_bytes(digest) == data


def test_blob_layout_has_a_two_character_fan_out(store: ContentStore) -> None:
    digest = store.put_bytes(b"x")
    path = store.path_of(digest)
    assert path == store.root / "objects" / digest[:2] / digest[2:]
    assert path.is_file()


def test_identical_bytes_are_stored_once(store: ContentStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    assert first == second
    assert len(blobs(store)) == 1
    store.put_bytes(b"different")
    assert len(blobs(store)) == 2


def test_put_file_dedupes_with_put_bytes(store: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"a,b\n1,2\n")
    other = tmp_path / "b.csv"
    other.write_bytes(b"a,b\n1,2\n")
    digest, size = store.put_file(source)
    assert (digest, size) == (b3(b"a,b\n1,2\n"), 8)
    assert store.put_file(other) == (digest, 8)
    assert store.put_bytes(b"a,b\n1,2\n") == digest
    assert len(blobs(store)) == 1
    assert store.read_bytes(digest) == b"a,b\n1,2\n"


def test_empty_content_is_a_blob(store: ContentStore) -> None:
    digest = store.put_bytes(b"")
    assert digest == b3(b"")
    assert store.read_bytes(digest) == b""


class RecordingDigests:
    """A ``Digests`` source that records how put_file used it."""

    def __init__(self) -> None:
        self.asked: list[Path] = []
        self.told: list[tuple[Path, str]] = []

    def digest(self, path: Path, st: os.stat_result) -> Digest:
        self.asked.append(path)
        return hash_file(path, st.st_size)

    def remember(self, path: Path, st: os.stat_result, digest: str) -> None:
        assert st.st_size == path.stat().st_size
        self.told.append((path, digest))


@pytest.mark.parametrize("size", [0, 10, 64 * 1024, 64 * 1024 + 1, 300_000])
def test_put_file_reports_or_asks_for_the_digest(
    store: ContentStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    source = tmp_path / "f"
    source.write_bytes(data)
    digests = RecordingDigests()
    digest, stored_size = store.put_file(source, digests)
    assert (digest, stored_size) == (b3(data), size)
    assert store.read_bytes(digest) == data
    # the digest source learns the digest either way (so the file is not hashed again)
    known = [d for _, d in digests.told] + [hash_file(p) for p in digests.asked]
    assert known == [digest]


def test_put_file_with_a_digest_cache_fills_the_cache(
    store: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"content")
    cache = DigestCache(tmp_path / "digests.sqlite")
    digest, _ = store.put_file(source, cache)
    cache.flush()
    calls: list[object] = []
    monkeypatch.setattr(hashing, "hash_file", lambda *a: calls.append(a))
    assert cache.digest(source) == digest
    assert calls == []
    cache.close()


def test_blobs_are_read_only(store: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"data")
    for digest in (store.put_bytes(b"bytes"), store.put_file(source)[0]):
        mode = stat.S_IMODE(store.path_of(digest).stat().st_mode)
        assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)


def test_writes_leave_no_temp_files(store: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"data")
    store.put_bytes(b"one")
    store.put_file(source)
    tmp = store.root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_storing_does_not_change_the_source(store: ContentStore, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"data")
    before = source.stat()
    digest, _ = store.put_file(source)
    assert source.read_bytes() == b"data"
    assert stat.S_IMODE(source.stat().st_mode) == stat.S_IMODE(before.st_mode)
    assert not os.path.samefile(source, store.path_of(digest))


def test_reading_a_missing_blob_is_a_store_error(store: ContentStore) -> None:
    with pytest.raises(StoreError):
        store.read_bytes(b3(b"never stored"))
    assert not store.has(b3(b"never stored"))


# -- iter_digests / remove / clean_tmp -------------------------------------------------------


def test_iter_digests_lists_every_blob(store: ContentStore) -> None:
    assert list(store.iter_digests()) == []
    expected = {store.put_bytes(bytes([i]) * (i + 1)) for i in range(20)}
    listed = list(store.iter_digests())
    assert len(listed) == 20
    assert set(listed) == expected


def test_remove_deletes_a_blob_and_returns_its_size(store: ContentStore) -> None:
    digest = store.put_bytes(b"12345")
    assert store.remove(digest) == 5
    assert not store.has(digest)
    assert store.remove(digest) == 0
    assert list(store.iter_digests()) == []


def test_clean_tmp_removes_leftovers(store: ContentStore) -> None:
    assert store.clean_tmp() == 0
    store.put_bytes(b"x")  # creates tmp/
    tmp = store.root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "put-abc").write_bytes(b"half a blob")
    (tmp / "put-def").write_bytes(b"another")
    assert store.clean_tmp() == 2
    assert list(tmp.iterdir()) == []
    assert store.has(hash_bytes(b"x"))


# -- trees -------------------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)))
    (root / "sub" / "deep" / "c.txt").write_bytes(b"alpha")  # same content as a.txt
    script = root / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (root / "a.txt").chmod(0o644)


def test_put_tree_and_read_tree(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    digest, total = store.put_tree(src)
    assert total == 5 + 256 + 5 + len(b"#!/bin/sh\necho hi\n")
    entries = store.read_tree(digest)
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    by_path = {e.path: e for e in entries}
    assert set(by_path) == {"a.txt", "run.sh", "sub/b.bin", "sub/deep/c.txt"}
    assert by_path["a.txt"] == TreeEntry("a.txt", Digest(b3(b"alpha")), 5, False)
    assert by_path["run.sh"].executable is True
    assert by_path["sub/b.bin"].digest == b3(bytes(range(256)))
    assert by_path["sub/deep/c.txt"].digest == by_path["a.txt"].digest
    # the same content under two paths is one blob: 3 files + 1 manifest
    assert len(blobs(store)) == 4


def test_put_tree_gives_the_files_read_tree_would(store: ContentStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "link").symlink_to("a.txt")  # links and directories: not files
    (tmp_path / "src" / "empty").mkdir()
    files: list[TreeEntry] = []
    digest, _ = store.put_tree(tmp_path / "src", files=files)
    assert files == store.read_tree(digest)


def test_put_tree_is_deterministic(store: ContentStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "one")
    make_tree(tmp_path / "two")
    assert store.put_tree(tmp_path / "one") == store.put_tree(tmp_path / "two")


def test_put_tree_changes_with_the_executable_bit(store: ContentStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "one")
    make_tree(tmp_path / "two")
    (tmp_path / "two" / "run.sh").chmod(0o644)
    assert store.put_tree(tmp_path / "one")[0] != store.put_tree(tmp_path / "two")[0]


def test_read_tree_of_a_plain_blob_is_a_store_error(store: ContentStore) -> None:
    with pytest.raises(StoreError):
        store.read_tree(store.put_bytes(b"not json"))
    with pytest.raises(StoreError):
        store.read_tree(store.put_bytes(b'{"entries": [{"path": "x"}]}'))


def files_of(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("mode", ["copy", "auto"])
def test_checkout_tree_round_trips(store: ContentStore, tmp_path: Path, mode: str) -> None:
    src = tmp_path / "src"
    make_tree(src)
    digest, _ = store.put_tree(src)
    dest = tmp_path / "out" / "tree"
    store.checkout_tree(digest, dest, mode)  # type: ignore[arg-type]
    assert files_of(dest) == files_of(src)
    assert files_of(dest)["run.sh"][1] is True
    assert files_of(dest)["a.txt"][1] is False


def test_checkout_tree_removes_extra_files_and_overwrites(
    store: ContentStore, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    digest, _ = store.put_tree(src)
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    (dest / "stale.txt").write_bytes(b"old")
    (dest / "sub" / "stale.bin").write_bytes(b"old")
    (dest / "a.txt").write_bytes(b"changed locally")
    store.checkout_tree(digest, dest)
    assert files_of(dest) == files_of(src)


def test_checkout_tree_over_a_file(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    digest, _ = store.put_tree(src)
    dest = tmp_path / "dest"
    dest.write_bytes(b"a file where the tree goes")
    store.checkout_tree(digest, dest)
    assert files_of(dest) == files_of(src)


def test_checked_out_files_are_writable_copies(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"blob")
    dest = tmp_path / "out.txt"
    store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"blob"
    dest.write_bytes(b"edited")  # must not raise, must not touch the blob
    assert store.read_bytes(digest) == b"blob"


def test_checkout_file_executable(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"#!/bin/sh\n")
    store.checkout_file(digest, tmp_path / "x", executable=True)
    store.checkout_file(digest, tmp_path / "y", executable=False)
    assert os.access(tmp_path / "x", os.X_OK)
    assert not (tmp_path / "y").stat().st_mode & stat.S_IXUSR


def test_checkout_file_is_atomic_and_leaves_no_temp_file(
    store: ContentStore, tmp_path: Path
) -> None:
    digest = store.put_bytes(b"new content")
    dest_dir = tmp_path / "work"
    dest_dir.mkdir()
    dest = dest_dir / "result.csv"
    dest.write_bytes(b"old content")
    inode_before = dest.stat().st_ino
    store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"new content"
    assert [p.name for p in dest_dir.iterdir()] == ["result.csv"]
    # replaced by a rename, not rewritten in place
    assert dest.stat().st_ino != inode_before


def test_checkout_file_replaces_a_stale_temp_file(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"fresh")
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "result.csv"
    (work / ".result.csv.conveyor-tmp").write_bytes(b"left by a crash")
    store.checkout_file(digest, dest)
    assert dest.read_bytes() == b"fresh"
    assert [p.name for p in work.iterdir()] == ["result.csv"]


def test_checkout_file_link_mode_shares_the_blob(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"linked")
    dest = tmp_path / "linked.txt"
    store.checkout_file(digest, dest, mode="link")
    assert dest.read_bytes() == b"linked"
    assert os.path.samefile(dest, store.path_of(digest))  # same filesystem: a hard link
    assert [p.name for p in tmp_path.iterdir() if p.name != "store"] == ["linked.txt"]


def test_checkout_of_a_missing_blob_is_a_store_error(store: ContentStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        store.checkout_file(b3(b"absent"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- hash_file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 + 7, 4 * 1024 * 1024, 5 * 1024 * 1024 + 3])
def test_hash_file_agrees_with_blake3(tmp_path: Path, size: int) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = b3(data)
    assert hash_file(path) == expected
    assert hash_file(str(path), size) == expected
    assert hash_bytes(data) == expected


@pytest.mark.parametrize("leased", [True, False])
@pytest.mark.parametrize("size", [4096, 4097, 3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1, 10_000])
def test_a_large_file_read_in_chunks_hashes_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, leased: bool
) -> None:
    """Mapped under a lease, or read in chunks (without one): every boundary case of the
    chunks, in small."""
    monkeypatch.setattr(hashing, "_THREADED", 4096)
    monkeypatch.setattr(hashing, "_BIG_CHUNK", 4096)
    if not leased:
        monkeypatch.setattr(hashing, "_hash_leased", lambda fd: None)
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == b3(data)
    with open(path, "rb") as handle:
        handle.seek(100)
        assert hashing.hash_fd(handle.fileno(), size - 100) == (b3(data[100:]), size - 100)


# -- DigestCache -------------------------------------------------------------------------------


class CountingHash:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: Path | str, size: int | None = None) -> Digest:
        self.calls.append(os.fspath(path))
        return hash_file(path, size)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingHash:
    counter = CountingHash()
    monkeypatch.setattr(hashing, "hash_file", counter)
    return counter


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are read as if long after (no row is racy)."""
    _later(monkeypatch)


def test_digest_cache_returns_the_content_digest(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"cached")
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"cached")
    cache.close()


def test_digest_cache_does_not_reread_an_unchanged_file_after_flush(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"cached")
    cache = DigestCache(tmp_path / "cache.sqlite")
    first = cache.digest(path)
    cache.flush()
    assert cache.digest(path) == first
    assert cache.digest(path, os.stat(path)) == first
    assert counting.calls == [str(path)]
    cache.close()


def test_digest_cache_does_not_reread_an_unchanged_file_before_flush(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"cached")
    cache = DigestCache(tmp_path / "cache.sqlite")
    first = cache.digest(path)
    assert cache.digest(path) == first
    assert counting.calls == [str(path)]
    cache.close()


def test_digest_cache_asks_sqlite_once_per_file(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    """A run asks for the same file's digest several times (as a step's output, then as the
    next step's input): the row read once answers the later questions, still checked
    against the file's stat."""
    path = tmp_path / "f"
    path.write_bytes(b"cached")
    first = DigestCache(tmp_path / "cache.sqlite")
    digest = first.digest(path)
    first.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    selects: list[str] = []
    cache._connect().set_trace_callback(
        lambda sql: selects.append(sql) if sql.startswith("SELECT") else None
    )
    assert [cache.digest(path) for _ in range(3)] == [digest] * 3
    assert len(selects) == 1
    assert counting.calls == [str(path)]
    cache.close()


def test_digest_cache_preload_reads_many_rows_in_one_query(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    """A run preloads the rows of its steps' files: one SELECT answers them all (a path
    without a row, and one that appears twice, cost nothing more)."""
    paths = [tmp_path / f"f{i}" for i in range(50)]
    for i, path in enumerate(paths):
        path.write_bytes(b"x" * i)
    first = DigestCache(tmp_path / "cache.sqlite")
    digests = [first.digest(p) for p in paths]
    first.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    selects: list[str] = []
    cache._connect().set_trace_callback(
        lambda sql: selects.append(sql) if sql.startswith("SELECT") else None
    )
    cache.preload([*paths, paths[0], tmp_path / "no-row"])
    assert [cache.digest(p) for p in paths] == digests
    assert len(selects) == 1
    assert len(counting.calls) == len(paths)  # hashed by the first cache only
    cache.close()


def test_digest_cache_preload_spares_a_query_per_file_without_a_row(
    tmp_path: Path, counting: CountingHash
) -> None:
    """A cold run's inputs have no rows: the preload's one SELECT says so, and asking for
    each digest then hashes the file without a query of its own. A row another process
    writes after the preload is not used: the file is hashed, so its digest stays right."""
    paths = [tmp_path / f"f{i}" for i in range(20)]
    for i, path in enumerate(paths):
        path.write_bytes(b"y" * i)
    cache = DigestCache(tmp_path / "cache.sqlite")
    selects: list[str] = []
    cache._connect().set_trace_callback(
        lambda sql: selects.append(sql) if sql.startswith("SELECT") else None
    )
    cache.preload(paths)
    other = DigestCache(tmp_path / "cache.sqlite")
    other.remember(paths[0], paths[0].stat(), "0" * 64)  # a wrong row, written meanwhile
    other.close()
    assert [cache.digest(p) for p in paths] == [b3(b"y" * i) for i in range(20)]
    assert len(selects) == 1
    assert len(counting.calls) == len(paths)
    cache.close()


def test_digest_cache_preloaded_rows_are_still_checked_against_the_file(
    tmp_path: Path, counting: CountingHash
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    first = DigestCache(tmp_path / "cache.sqlite")
    first.digest(path)
    first.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.preload([path])
    path.write_bytes(b"bbbbbbbb")  # changed after the preload
    assert cache.digest(path) == b3(b"bbbbbbbb")
    assert len(counting.calls) == 2
    cache.close()


def test_digest_cache_preload_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting: CountingHash
) -> None:
    monkeypatch.setattr(hashing, "_PRELOAD_BATCH", 3)
    paths = [tmp_path / f"f{i}" for i in range(7)]
    for path in paths:
        path.write_bytes(path.name.encode())
    first = DigestCache(tmp_path / "cache.sqlite")
    digests = [first.digest(p) for p in paths]
    first.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    selects: list[str] = []
    cache._connect().set_trace_callback(
        lambda sql: selects.append(sql) if sql.startswith("SELECT") else None
    )
    cache.preload(paths)
    assert [cache.digest(p) for p in paths] == digests
    assert len(selects) == 3
    cache.close()


def test_digest_cache_rehashes_when_the_size_changes(
    tmp_path: Path, counting: CountingHash
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"short")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.digest(path)
    cache.flush()
    st = path.stat()
    path.write_bytes(b"much longer")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only the size tells
    assert cache.digest(path) == b3(b"much longer")
    assert len(counting.calls) == 2
    cache.close()


def test_digest_cache_rehashes_when_the_mtime_changes(
    tmp_path: Path, counting: CountingHash
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.digest(path)
    cache.flush()
    st = path.stat()
    path.write_bytes(b"bbbb")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache.digest(path) == b3(b"bbbb")
    assert len(counting.calls) == 2
    cache.close()


def test_digest_cache_rehashes_a_file_rewritten_with_its_mtime_restored(
    tmp_path: Path, counting: CountingHash
) -> None:
    """Same size, same inode, mtime set back (``touch -r``, a copy keeping times): only
    the ctime, which no tool can set back, tells."""
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.digest(path)
    cache.flush()
    st = path.stat()
    ctime = st.st_ctime_ns
    while path.stat().st_ctime_ns == ctime:  # the next tick of the filesystem's clock
        with open(path, "r+b") as handle:
            handle.write(b"bbbb")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert cache.digest(path) == b3(b"bbbb")
    assert len(counting.calls) == 2
    cache.close()


def test_a_digest_cache_from_before_the_ctime_is_dropped(
    tmp_path: Path, counting: CountingHash
) -> None:
    """Its rows cannot vouch for a ctime: the file is read again, the old table goes."""
    path = tmp_path / "f"
    path.write_bytes(b"new content")
    st = path.stat()
    db = tmp_path / "digests.sqlite"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE digests (path TEXT PRIMARY KEY, size INTEGER,"
            " mtime_ns INTEGER, inode INTEGER, digest TEXT)"
        )
        row = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, b3(b"old content"))
        old.execute("INSERT INTO digests VALUES (?, ?, ?, ?, ?)", row)
    old.close()
    cache = DigestCache(db)
    assert cache.digest(path) == b3(b"new content")
    assert len(counting.calls) == 1
    cache.close()
    with sqlite3.connect(db) as check:
        tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master")}
    check.close()
    assert "digests" not in tables


def test_digest_cache_rehashes_a_replaced_file(tmp_path: Path, counting: CountingHash) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.digest(path)
    cache.flush()
    st = path.stat()
    other = tmp_path / "g"
    other.write_bytes(b"cccc")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    keep_alive = tmp_path / "keep"
    os.link(path, keep_alive)  # the old inode stays in use, so the new one differs
    os.replace(other, path)
    assert path.stat().st_ino != st.st_ino
    assert cache.digest(path) == b3(b"cccc")
    assert len(counting.calls) == 2
    cache.close()


def test_digest_cache_persists_across_instances(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"persist me")
    db = tmp_path / "state" / "digests.sqlite"
    first = DigestCache(db)
    digest = first.digest(path)
    first.flush()
    first.close()
    assert db.exists()
    second = DigestCache(db)
    assert second.digest(path) == digest
    assert len(counting.calls) == 1
    second.close()


def test_digest_cache_unflushed_entries_are_lost_not_wrong(
    tmp_path: Path, counting: CountingHash
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    db = tmp_path / "digests.sqlite"
    first = DigestCache(db)
    first.digest(path)  # never flushed: as if the process died
    second = DigestCache(db)
    assert second.digest(path) == b3(b"x")
    assert len(counting.calls) == 2
    second.close()


def test_remember_records_a_digest_computed_elsewhere(
    tmp_path: Path, counting: CountingHash, settled: None
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"stored")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.remember(path, path.stat(), b3(b"stored"))
    cache.flush()
    assert cache.digest(path) == b3(b"stored")
    assert counting.calls == []
    cache.close()


def test_close_flushes(tmp_path: Path, counting: CountingHash, settled: None) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    db = tmp_path / "digests.sqlite"
    first = DigestCache(db)
    first.digest(path)
    first.close()
    second = DigestCache(db)
    second.digest(path)
    assert len(counting.calls) == 1
    second.close()


# -- threads (the runner's file-work pool shares one store and one digest cache) ----------


def _together(work: Callable[[int], None], threads: int = 2) -> None:
    """Run ``work(i)`` on ``threads`` threads that start at once; re-raise their errors."""
    start = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a thread did not finish"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("size", [100, 200 * 1024])  # one read, and the copy path
def test_two_threads_storing_the_same_blob_leave_it_whole(
    store: ContentStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    sources = []
    for i in range(2):
        source = tmp_path / f"src{i}.bin"
        source.write_bytes(data)
        sources.append(source)
    cache = DigestCache(tmp_path / "digests.db")
    digests: list[str] = []

    def put(i: int) -> None:
        for _ in range(20):
            digests.append(store.put_file(sources[i], cache)[0])

    _together(put)
    cache.close()
    assert set(digests) == {b3(data)}
    assert [p.name for p in blobs(store)] == [b3(data)[2:]]
    assert store.path_of(b3(data)).read_bytes() == data
    assert list((store.root / "tmp").iterdir()) == []


def test_threads_sharing_a_digest_cache_lose_no_entry(tmp_path: Path, settled: None) -> None:
    files = []
    for i in range(300):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"file {i}\n")
        files.append(path)
    cache = DigestCache(tmp_path / "digests.db")

    def digest_and_flush(i: int) -> None:
        for n, path in enumerate(files[i::2]):
            assert cache.digest(path) == b3(path.read_bytes())
            if n % 10 == 0:
                cache.flush()  # one thread flushes while the other adds

    _together(digest_and_flush)
    cache.close()
    with sqlite3.connect(tmp_path / "digests.db") as db:
        rows = dict(db.execute("SELECT path, digest FROM file_digests").fetchall())
    db.close()
    assert rows == {str(p): b3(p.read_bytes()) for p in files}


# -- DigestCache: racy rows (a change in the same tick as the stat) -----------------------------


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float = 10) -> None:
    """The cache's clock moved on: every file here changed long before it looks."""
    now = hashing._now
    monkeypatch.setattr(hashing, "_now", lambda: now() + int(seconds * 1e9))


def _changed_after_its_first_read(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``path`` holds ``bbbb``; the cache's first read of it returns ``aaaa``, what it held
    before a change in the same tick (a clock as fine as this machine's puts no two writes
    in one tick, so it is simulated). Returns the list of reads, filled as they happen."""
    path.write_bytes(b"bbbb")
    reads: list[str] = []

    def read_before_the_change(p: Path | str, size: int | None = None) -> Digest:
        reads.append(os.fspath(p))
        return b3(b"aaaa") if len(reads) == 1 else hash_file(p, size)

    monkeypatch.setattr(hashing, "hash_file", read_before_the_change)
    return reads


def test_a_row_read_in_the_tick_its_file_changed_is_hashed_again_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file changes right after it was read, in the same tick of the filesystem's
    clock: its signature is the one recorded, its content is not (simulated)."""
    path = tmp_path / "f"
    reads = _changed_after_its_first_read(path, monkeypatch)
    first = DigestCache(tmp_path / "cache.sqlite")
    assert first.digest(path) == b3(b"aaaa")
    first.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"bbbb")  # not vouched for: read again
    cache.close()
    _later(monkeypatch)
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"bbbb")  # read again: now recorded as settled
    cache.close()
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"bbbb")
    cache.close()
    assert len(reads) == 3


def test_a_file_rewritten_in_the_same_tick_with_its_mtime_restored_is_hashed_again(
    tmp_path: Path, counting: CountingHash
) -> None:
    """The real case, where the filesystem's clock is coarse enough to show it."""
    path = tmp_path / "f"
    for _ in range(50):
        path.write_bytes(b"aaaa")
        cache = DigestCache(tmp_path / "cache.sqlite")
        cache.digest(path)
        cache.close()
        st = path.stat()
        with open(path, "r+b") as handle:
            handle.write(b"bbbb")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        if hashing.signature(path.stat()) == hashing.signature(st):
            break
    else:
        pytest.skip("this filesystem's clock put every rewrite in a later tick")
    counting.calls.clear()
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"bbbb")
    assert counting.calls == [str(path)]
    cache.close()


def test_a_settled_row_is_trusted_and_a_racy_one_by_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting: CountingHash
) -> None:
    """A racy row is read again whenever it is asked for, in its own run too (a step's
    output, then the next step's input), until a read comes after its tick; only settled
    rows are written for later runs."""
    fresh, settled = tmp_path / "fresh", tmp_path / "settled"
    fresh.write_bytes(b"fresh")
    settled.write_bytes(b"settled")
    cache = DigestCache(tmp_path / "cache.sqlite")
    cache.digest(fresh)
    assert cache.digest(fresh) == b3(b"fresh")  # still in its tick: read again
    _later(monkeypatch)
    cache.digest(settled)
    assert cache.digest(fresh) == b3(b"fresh")  # read after its tick: settled now
    assert cache.digest(fresh) == b3(b"fresh")  # and trusted
    cache.close()
    assert counting.calls == [str(fresh), str(fresh), str(settled), str(fresh)]
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(settled) == b3(b"settled")
    assert cache.digest(fresh) == b3(b"fresh")
    assert counting.calls == [str(fresh), str(fresh), str(settled), str(fresh)]
    cache.close()


def test_a_file_changed_in_its_tick_within_one_run_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run: a step's output is stored (its row racy), a later step rewrites it in the
    same tick with the same size (the signature the row holds), and the next step's input
    asks for it, before and after the cache's mid-run flush (simulated)."""
    path = tmp_path / "f"
    reads = _changed_after_its_first_read(path, monkeypatch)
    cache = DigestCache(tmp_path / "cache.sqlite")
    assert cache.digest(path) == b3(b"aaaa")
    assert cache.digest(path) == b3(b"bbbb")
    cache.remember(path, path.stat(), b3(b"aaaa"))  # stored as read before the change
    cache.flush()
    assert cache.digest(path) == b3(b"bbbb")
    assert cache.known([str(path)]) == {}  # a racy row is no one's answer
    cache.close()
    assert len(reads) == 3


def test_coarse_timestamps_take_a_coarse_tick(tmp_path: Path, counting: CountingHash) -> None:
    """Whole-second times (FAT, HFS+, ext3) mean a tick of up to two seconds."""
    assert hashing._racy(5 * 10**9, 6 * 10**9 + 500_000_000)
    assert not hashing._racy(5 * 10**9, 7 * 10**9 + 1)
    assert hashing._racy(5 * 10**9 + 1, 5 * 10**9 + 1 + hashing._TICK_NS - 1)
    assert not hashing._racy(5 * 10**9 + 1, 5 * 10**9 + 1 + hashing._TICK_NS)
