"""A put's files on a pool of threads (``store_sources`` over ``ContentStore.ingest``):
the same entries and blobs as one thread, reads only where the digest cache cannot
vouch, and a file that changes while it is read stored as read, never cached."""

from __future__ import annotations

import fcntl
import json
import os
import stat as statmod
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import StoreError
from conveyor.sdk.datasets import put, trees
from conveyor.sdk.datasets.put import plan_sources, store_sources
from conveyor.store import cas, hashing
from conveyor.store.cached import CachedStore
from conveyor.store.cas import ContentStore, TreeEntry, manifest_bytes
from conveyor.store.hashing import DigestCache, hash_bytes, hash_file
from conveyor.store.objects import ObjectStore, ObjectStoreSettings

BIG = 5 * 1024 * 1024  # above the one-read limit: read in chunks, copied while hashed


def _tree(root: Path) -> Path:
    """Duplicates, empty files, an executable, a large file and a link inside."""
    data = root / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    for i in range(40):
        (data / "sub" / f"f{i:02d}.bin").write_bytes(f"content {i % 7}\n".encode() * (i + 1))
    (data / "empty").write_bytes(b"")
    (data / "sub" / "deeper" / "empty-too").write_bytes(b"")
    (data / "same-as-f00").write_bytes(b"content 0\n")
    tool = data / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (data / "big.bin").write_bytes(os.urandom(BIG))
    (data / "link-to-f01").symlink_to("sub/f01.bin")
    return data


def _reference(sources: list[put.Source]) -> list[tuple[str, TreeEntry]]:
    """What each source must become, computed without the store."""
    expected = []
    for source in sources:
        assert source.file is not None
        st_ = os.stat(source.file)
        executable = bool(st_.st_mode & statmod.S_IXUSR)
        entry = TreeEntry(source.target, hash_file(source.file), st_.st_size, executable)
        expected.append((source.target, entry))
    return expected


def test_the_pool_stores_what_one_thread_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = plan_sources([str(_tree(tmp_path))], "", False, True)
    monkeypatch.setattr(put, "_BATCH", 3)  # many batches, several threads at once
    pooled = ContentStore(tmp_path / "pooled")
    many = store_sources(pooled, sources, DigestCache(tmp_path / "a.sqlite"), tmp_path)
    monkeypatch.setattr(put, "_THREADS", 1)
    single = ContentStore(tmp_path / "single")
    one = store_sources(single, sources, DigestCache(tmp_path / "b.sqlite"), tmp_path)

    assert many.entries == one.entries == _reference(sources)
    assert many.bytes == one.bytes == sum(e.size for _, e in one.entries)
    assert sorted(pooled.iter_digests()) == sorted(single.iter_digests())
    assert all(pooled.intact(d) for d in pooled.iter_digests())
    files = [e for _, e in many.entries]
    assert pooled.put_manifest(files) == single.put_manifest(files)
    digests = {e.digest for e in files}
    assert len(digests) < len(files)  # duplicates and the link: stored once each
    assert sum(1 for _ in pooled.iter_digests()) == len(digests) + 1  # + the manifest


def test_a_put_reads_only_what_the_cache_cannot_vouch_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tree(tmp_path)
    monkeypatch.setattr(put, "_settled_before", lambda: 2**62)  # as if written long ago
    monkeypatch.setattr(hashing, "_now", lambda: 2**62)  # the cache's clock agrees
    sources = plan_sources([str(data)], "", False, True)
    store = ContentStore(tmp_path / "store")
    first = DigestCache(tmp_path / "cache.sqlite")
    before = store_sources(store, sources, first, tmp_path)
    first.close()

    reads: list[int] = []
    hashes: list[int] = []
    read_whole, real_hash = cas._read_whole, cas.hash_fd
    monkeypatch.setattr(
        cas, "_read_whole", lambda fd, size: reads.append(size) or read_whole(fd, size)
    )
    monkeypatch.setattr(cas, "hash_fd", lambda fd, size: hashes.append(size) or real_hash(fd, size))
    again = store_sources(store, sources, DigestCache(tmp_path / "cache.sqlite"), tmp_path)
    assert again.entries == before.entries
    assert reads == [] and hashes == []

    changed = data / "sub" / "f03.bin"
    changed.write_bytes(b"new content, same put")
    after = store_sources(store, sources, DigestCache(tmp_path / "cache.sqlite"), tmp_path)
    assert reads == [len(b"new content, same put")]
    entry = dict(after.entries)["data/sub/f03.bin"]
    assert entry.digest == hash_bytes(b"new content, same put")


def test_a_file_changed_just_before_the_put_is_stored_but_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its signature could stay the same through a change in the same clock tick: the
    next put reads it again, and a put once it has settled caches it."""
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"just written")
    store = ContentStore(tmp_path / "store")
    cache = DigestCache(tmp_path / "cache.sqlite")
    sources = plan_sources([str(path)], "", False, False)
    stored = store_sources(store, sources, cache, tmp_path)
    cache.flush()
    assert stored.entries[0][1].digest == hash_bytes(b"just written")
    assert cache.known([str(path)]) == {}

    settled = path.stat().st_ctime_ns + 1
    monkeypatch.setattr(put, "_settled_before", lambda: settled)
    monkeypatch.setattr(hashing, "_now", lambda: 2**62)  # the cache's clock agrees
    store_sources(store, sources, cache, tmp_path)
    cache.close()
    again = DigestCache(tmp_path / "cache.sqlite")
    written = again.known([str(path)])
    again.close()
    assert [d for _, d in written.values()] == [hash_bytes(b"just written")]


def _lying_fstat(size: int) -> Any:
    real = os.fstat

    def fstat(fd: int) -> SimpleNamespace:
        st_ = real(fd)
        return SimpleNamespace(
            st_mode=st_.st_mode,
            st_size=size,
            st_mtime_ns=st_.st_mtime_ns,
            st_ctime_ns=st_.st_ctime_ns,
            st_ino=st_.st_ino,
        )

    return fstat


@pytest.mark.parametrize("seen", [600, 2000, 0], ids=["grew", "shrank", "was-empty"])
def test_a_file_that_changes_while_it_is_read_is_stored_as_read_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seen: int
) -> None:
    content = os.urandom(1000)
    path = tmp_path / "moving.log"
    path.write_bytes(content)
    store = ContentStore(tmp_path / "store")
    cache = DigestCache(tmp_path / "cache.sqlite")
    monkeypatch.setattr(cas.os, "fstat", _lying_fstat(seen))  # its stat before the read
    stored = store_sources(store, plan_sources([str(path)], "", False, False), cache, tmp_path)
    monkeypatch.undo()
    cache.flush()

    entry = stored.entries[0][1]
    assert (entry.digest, entry.size) == (hash_bytes(content), len(content))
    assert store.read_bytes(entry.digest) == content
    assert cache.known([str(path)]) == {}  # never vouched for: the next put reads it again


def test_a_large_file_changed_after_its_hash_is_stored_under_what_was_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = os.urandom(BIG)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    store = ContentStore(tmp_path / "store")
    monkeypatch.setattr(cas, "hash_fd", lambda fd, size: (hash_bytes(b"what it held before"), size))
    got = store.ingest(str(path))
    assert got.digest == hash_bytes(content) and got.size == BIG
    assert got.read is None
    monkeypatch.undo()
    assert store.intact(got.digest)
    assert not store.has(hash_bytes(b"what it held before"))


def test_a_large_file_truncated_while_it_is_read_is_stored_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process cuts the file after the first chunk is read: the hash is of what
    was read, the blob is what the copy found, and the cache is told nothing."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG))
    monkeypatch.setattr(hashing, "_BIG_CHUNK", 1024 * 1024)
    preadv = os.preadv
    cut = threading.Lock()
    reads: list[int] = []

    def truncating(fd: int, buffers: list[memoryview], offset: int) -> int:
        got = preadv(fd, buffers, offset)
        with cut:
            if not reads:
                os.truncate(path, 1000)
            reads.append(got)
        return got

    monkeypatch.setattr(hashing.os, "preadv", truncating)
    monkeypatch.setattr(hashing, "_hash_leased", lambda fd: None)  # no lease: read
    store = ContentStore(tmp_path / "store")
    cache = DigestCache(tmp_path / "cache.sqlite")
    stored = store_sources(store, plan_sources([str(path)], "", False, False), cache, tmp_path)
    monkeypatch.undo()
    cache.flush()

    entry = stored.entries[0][1]
    kept = path.read_bytes()
    assert reads[0] == 1024 * 1024 and len(kept) == 1000  # cut after a full first read
    assert (entry.digest, entry.size) == (hash_bytes(kept), 1000)
    assert store.read_bytes(entry.digest) == kept
    assert cache.known([str(path)]) == {}


def test_a_large_file_is_mapped_under_a_lease_and_read_without_one(tmp_path: Path) -> None:
    """A file this process holds open for writing gets no read lease (EAGAIN): it is
    read instead, with the same digest as the mapping under a lease."""
    path = tmp_path / "big.bin"
    data = os.urandom(BIG)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        leased = hashing._hash_leased(fd)
        assert leased == (hash_bytes(data), len(data))
        assert os.lseek(fd, 0, os.SEEK_CUR) == len(data)  # as a read would leave it
        assert fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_UNLCK  # released
    finally:
        os.close(fd)
    with open(path, "r+b") as writer:  # a writer: no read lease can be had
        fd = os.open(path, os.O_RDONLY)
        try:
            assert hashing._hash_leased(fd) is None
            assert hashing.hash_fd(fd, len(data)) == (hash_bytes(data), len(data))
        finally:
            os.close(fd)
        assert not writer.closed


def test_a_fifo_in_place_of_a_file_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(StoreError, match="no longer a regular file"):
        ContentStore(tmp_path / "store").ingest(str(fifo))


def test_a_cached_store_uploads_what_a_put_ingests(tmp_path: Path) -> None:
    remote = ObjectStore(ObjectStoreSettings(f"memory://conveyor-{uuid.uuid4().hex}/blobs"))
    sources = plan_sources([str(_tree(tmp_path))], "", False, True)
    stored = store_sources(CachedStore(tmp_path / "store", remote), sources, None, tmp_path)
    assert all(remote.has(e.digest) for _, e in stored.entries)


_paths = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0/"), min_size=1
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.lists(_paths, min_size=1, max_size=3).map("/".join),
        st.tuples(st.integers(0, 2**40), st.booleans()),
        max_size=20,
    )
)
def test_a_manifest_is_the_json_it_always_was(files: dict[str, tuple[int, bool]]) -> None:
    """Trees keep their digests: the text written directly is json.dumps' text."""
    entries = [
        TreeEntry(p, hash_bytes(p.encode()), size, x)
        for p, (size, x) in files.items()
        if p not in (".", "..") and not any(part in (".", "..") for part in p.split("/"))
    ]
    as_dicts = [
        {"path": e.path, "digest": e.digest, "size": e.size, "x": e.executable}
        for e in sorted(entries, key=lambda e: e.path)
    ]
    expected = json.dumps({"kind": "tree", "entries": as_dicts}, sort_keys=True).encode()
    assert manifest_bytes(entries) == expected


@given(st.lists(st.lists(st.sampled_from("abc"), min_size=1, max_size=4).map("/".join)))
def test_directories_are_every_proper_prefix(paths: list[str]) -> None:
    expected = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, len(p.split("/")))}
    assert trees.directories(paths) == expected


def test_a_file_gone_since_it_was_listed_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"gone\.bin: cannot read it"):
        ContentStore(tmp_path / "store").ingest(str(tmp_path / "gone.bin"))
