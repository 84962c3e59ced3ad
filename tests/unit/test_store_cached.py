"""The local store as a cache in front of an object store, over fsspec's in-memory
filesystem (a real fsspec backend, no mock) and a local directory (a non-atomic one)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from conveyor.errors import StoreError, UsageError
from conveyor.store import objects
from conveyor.store.cached import CachedStore
from conveyor.store.hashing import hash_bytes
from conveyor.store.objects import ObjectStore, ObjectStoreSettings


@pytest.fixture
def remote() -> ObjectStore:
    return ObjectStore(ObjectStoreSettings(f"memory://conveyor-{uuid.uuid4().hex}/blobs"))


def test_a_blob_one_machine_puts_is_read_on_another(tmp_path: Path, remote: ObjectStore) -> None:
    a = CachedStore(tmp_path / "a", remote)
    b = CachedStore(tmp_path / "b", remote)
    digest = a.put_bytes(b"shared output\n")
    assert remote.has(digest)
    assert not (tmp_path / "b" / "objects").exists()  # nothing local on b yet
    assert b.has(digest)
    assert b.read_bytes(digest) == b"shared output\n"
    assert b.path_of(digest).read_bytes() == b"shared output\n"  # now cached locally


def test_trees_and_large_files_go_through(tmp_path: Path, remote: ObjectStore) -> None:
    src = tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    big = bytes(range(256)) * 4096  # 1 MiB: the put_file path, not put_bytes
    (src / "sub" / "big.bin").write_bytes(big)
    (src / "small.txt").write_text("x")
    tree, _ = CachedStore(tmp_path / "a", remote).put_tree(src)
    b = CachedStore(tmp_path / "b", remote)
    b.checkout_tree(tree, tmp_path / "restored")
    assert (tmp_path / "restored" / "sub" / "big.bin").read_bytes() == big
    assert (tmp_path / "restored" / "small.txt").read_text() == "x"


def test_a_damaged_object_is_refused_and_rewritten_by_the_next_put(
    tmp_path: Path, remote: ObjectStore
) -> None:
    data = b"the right bytes"
    digest = CachedStore(tmp_path / "a", remote).put_bytes(data)
    remote.fs.pipe_file(remote.key(digest), b"the wrong bytes")
    b = CachedStore(tmp_path / "b", remote)
    with pytest.raises(StoreError, match="damaged"):
        b.checkout_file(digest, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()
    assert not b.path_of(digest).exists()  # the bad copy never became a local blob
    b.put_bytes(data)  # the step ran again: its output repairs the object
    assert remote.fs.cat_file(remote.key(digest)) == data


def test_a_blob_in_neither_store_is_missing(tmp_path: Path, remote: ObjectStore) -> None:
    store = CachedStore(tmp_path / "a", remote)
    digest = hash_bytes(b"never stored")
    assert not store.has(digest)
    assert store.local_path(digest) is None
    with pytest.raises(StoreError, match="not in the store"):
        store.read_bytes(digest)


def test_a_filesystem_without_atomic_puts_gets_a_temporary_key_then_a_move(
    tmp_path: Path,
) -> None:
    remote = ObjectStore(ObjectStoreSettings(f"file://{tmp_path / 'bucket'}/prefix"))
    digest = CachedStore(tmp_path / "a", remote).put_bytes(b"moved into place")
    final = tmp_path / "bucket" / "prefix" / digest[:2] / digest[2:]
    assert final.read_bytes() == b"moved into place"
    assert list((tmp_path / "bucket" / "prefix" / "tmp").iterdir()) == []


@pytest.mark.parametrize("url", ["bucket/prefix", "s3://", "s3:///", "://x"])
def test_a_url_without_a_protocol_or_a_place_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="not an object store URL"):
        ObjectStore(ObjectStoreSettings(url))


def test_an_endpoint_is_for_s3_only() -> None:
    with pytest.raises(UsageError, match="s3:// URLs only"):
        ObjectStore(ObjectStoreSettings("gs://bucket/p", endpoint="http://127.0.0.1:1"))


def test_a_large_blob_the_store_holds_is_not_uploaded_again(
    tmp_path: Path, remote: ObjectStore
) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\x01" * (2 * 1024 * 1024))
    digest, _ = CachedStore(tmp_path / "a", remote).put_file(big)
    remote.fs.pipe_file(remote.key(digest), b"marker")  # stands in for the existing object
    another = ObjectStore(remote.settings)  # another process: it knows nothing yet
    CachedStore(tmp_path / "b", another).put_file(big)
    assert remote.fs.cat_file(remote.key(digest)) == b"marker"  # asked first, not sent
    small = tmp_path / "small"
    small.write_bytes(b"small")
    digest, _ = CachedStore(tmp_path / "c", ObjectStore(remote.settings)).put_file(small)
    remote.fs.pipe_file(remote.key(digest), b"marker")
    CachedStore(tmp_path / "d", ObjectStore(remote.settings)).put_file(small)
    assert remote.fs.cat_file(remote.key(digest)) == b"small"  # sent without asking


def test_a_protocol_fsspec_does_not_know_is_a_usage_error_at_first_use() -> None:
    store = ObjectStore(ObjectStoreSettings("nosuchprotocol://bucket/prefix"))
    with pytest.raises(UsageError, match="cannot open the object store nosuchprotocol://"):
        store.has("a" * 64)


class _Recording(ObjectStore):
    """The memory filesystem's store, recording the order of uploads; the first ``meet``
    uploads wait (bounded) for each other, so uploads one at a time would fail."""

    def __init__(self, settings: ObjectStoreSettings, meet: int) -> None:
        super().__init__(settings)
        self.order: list[str] = []
        self._meet = threading.Barrier(meet, timeout=10)
        self._started = 0

    def upload(self, source: Path, digest: str) -> None:
        with self._lock:
            self._started += 1
            first = self._started <= self._meet.parties
        if first:
            self._meet.wait()  # BrokenBarrierError unless they are under way at once
        with self._lock:
            self.order.append(digest)
        super().upload(source, digest)


def test_a_block_of_writes_uploads_at_its_end_in_parallel_manifests_last(
    tmp_path: Path, remote: ObjectStore
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(4):
        (tree / "sub" / f"f{i}").write_bytes(f"file {i}".encode())
    recording = _Recording(remote.settings, meet=4)
    store = CachedStore(tmp_path / "cache", recording)
    with store.uploads():
        digest, _ = store.put_tree(tree)
        assert recording.order == [], "nothing is uploaded before the block ends"
    files = [e.digest for e in store.read_tree(digest)]
    assert set(recording.order[:4]) == set(files) and recording.order[4:] == [digest]
    other = CachedStore(tmp_path / "other", ObjectStore(remote.settings))
    assert other.read_tree(digest) == store.read_tree(digest)


def test_writes_outside_a_block_upload_at_once(tmp_path: Path, remote: ObjectStore) -> None:
    store = CachedStore(tmp_path / "cache", remote)
    digest = store.put_bytes(b"now")
    assert remote.fs.cat_file(remote.key(digest)) == b"now"


def test_a_block_that_fails_uploads_nothing_and_a_later_write_does(
    tmp_path: Path, remote: ObjectStore
) -> None:
    store = CachedStore(tmp_path / "cache", remote)
    with pytest.raises(RuntimeError), store.uploads():
        digest = store.put_bytes(b"dropped")
        raise RuntimeError("the step's outputs could not all be stored")
    assert not remote.has(digest)
    store.put_bytes(b"dropped")  # present locally: still uploaded
    assert remote.fs.cat_file(remote.key(digest)) == b"dropped"


def test_an_object_seen_long_ago_is_written_again(
    tmp_path: Path, remote: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the trust period, a blob this process uploaded, and a large blob the store
    holds, are written again: their new time keeps them from a gc under way."""
    big = tmp_path / "big"
    big.write_bytes(b"\x02" * (2 * 1024 * 1024))
    store = CachedStore(tmp_path / "a", remote)
    digest, _ = store.put_file(big)
    remote.fs.pipe_file(remote.key(digest), b"marker")
    store.put_file(big)
    assert remote.fs.cat_file(remote.key(digest)) == b"marker", "trusted: not sent again"
    monkeypatch.setattr(objects, "_TRUST", 0.0)
    store.put_file(big)
    assert remote.fs.cat_file(remote.key(digest)) == big.read_bytes()
    remote.fs.pipe_file(remote.key(digest), b"marker")
    CachedStore(tmp_path / "b", ObjectStore(remote.settings)).put_file(big)
    assert remote.fs.cat_file(remote.key(digest)) == big.read_bytes(), "old: written again"


def test_a_fetched_object_is_not_trusted_as_written(tmp_path: Path, remote: ObjectStore) -> None:
    digest = CachedStore(tmp_path / "a", remote).put_bytes(b"fetched")
    reader = ObjectStore(remote.settings)
    assert CachedStore(tmp_path / "b", reader).fetch(digest)
    remote.fs.pipe_file(remote.key(digest), b"marker")
    CachedStore(tmp_path / "b", reader).put_bytes(b"fetched")
    assert remote.fs.cat_file(remote.key(digest)) == b"fetched"
