"""A bucket's gc over fsspec's in-memory filesystem (a real fsspec backend, no mock):
the tree files of a referenced tree are kept, the grace period counts from the object's
time, other keys are left alone; and the times of each filesystem's listing entries."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.sdk.objectgc import reachable, sweep_objects
from conveyor.store.cached import CachedStore
from conveyor.store.objects import ObjectStore, ObjectStoreSettings, mtime_of

HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> CachedStore:
    remote = ObjectStore(ObjectStoreSettings(f"memory://gc-{uuid.uuid4().hex}/blobs"))
    return CachedStore(tmp_path / "cache", remote)


def test_a_referenced_trees_files_stay_and_old_orphans_go(
    tmp_path: Path, store: CachedStore
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("in a tree\n")
    digest, _ = store.put_tree(tree)
    orphan = store.put_bytes(b"orphan\n")
    json_file = store.put_bytes(b'{"entries": "a JSON output, not a tree"}')
    store.remote.fs.pipe_file(f"{store.remote.key(orphan).rsplit('/', 2)[0]}/README", b"x")
    reader = CachedStore(tmp_path / "other", store.remote)  # reads the tree from the bucket
    keep = reachable(reader, {digest, json_file})
    assert keep == {digest, json_file, *(e.digest for e in store.read_tree(digest))}

    assert sweep_objects(reader, keep, HOUR).removed == 0  # all written just now
    result = sweep_objects(reader, keep, HOUR, now=time.time() + 2 * HOUR)
    assert (result.removed, result.kept, result.foreign) == (1, 3, 1)
    assert not store.remote.has(orphan) and store.remote.has(json_file)


def test_the_time_of_a_listing_entry() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert mtime_of({"LastModified": when}) == when.timestamp()  # S3
    assert mtime_of({"mtime": 12.5}) == 12.5  # local, SFTP
    assert mtime_of({"updated": "2026-01-02T03:04:05Z"}) == when.timestamp()  # GCS
    assert mtime_of({"last_modified": when}) == when.timestamp()  # Azure
    assert mtime_of({"size": 3}) is None  # unknown: never old enough to delete
    assert mtime_of({"mtime": True, "updated": "not a time"}) is None
