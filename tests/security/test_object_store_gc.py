"""A bucket's gc (``conveyor server gc`` with an object store) against hostile keys, on
the S3 endpoint of scripts/engines/s3.sh (moto): whatever else a bucket's prefix holds
(path traversal, keys that are not a digest, a blob-looking key under a directory that
is not a fan-out directory, a sibling prefix) is neither deleted nor listed into, even
with no grace period and nothing referenced; only the digest's own key is ever deleted."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from conveyor.sdk.objectgc import sweep_objects
from conveyor.store.cached import CachedStore
from conveyor.store.objects import ObjectStore, ObjectStoreSettings

ENDPOINT = os.environ.get("CONVEYOR_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(
    not ENDPOINT, reason='no S3 endpoint (eval "$(scripts/engines/s3.sh env)")'
)
BLOB = "ab" + "c" * 62
HOSTILE = [
    "../escaped",  # above the prefix
    "ab/../../escaped",  # a traversal inside a fan-out directory
    f"ab/{'c' * 62}/../x",  # a directory named like the blob
    f"evil/ab/{'d' * 62}",  # a blob's shape under a directory that is no fan-out
    f"AB/{'E' * 62}",  # upper case: not a digest
    f"ab/{'c' * 61}",  # too short
    f"ab/{'c' * 62}x",  # too long
    "notadigest",
    "tmp/upload-leftover",
]


def test_hostile_keys_are_neither_deleted_nor_followed(tmp_path: Path) -> None:
    prefix = f"{os.environ['CONVEYOR_S3_BUCKET']}/attack-{uuid.uuid4().hex}"
    remote = ObjectStore(
        ObjectStoreSettings(
            f"s3://{prefix}",
            ENDPOINT,
            options={
                "key": os.environ["CONVEYOR_S3_KEY_ID"],
                "secret": os.environ["CONVEYOR_S3_SECRET"],
            },
        )
    )
    keys = [f"{prefix}/{k}" for k in HOSTILE] + [f"{prefix}-sibling/ab/{'c' * 62}"]
    for key in keys:
        remote.fs.pipe_file(key, b"not to be deleted")
    remote.fs.pipe_file(remote.key(BLOB), b"an unreferenced blob")  # the one candidate
    store = CachedStore(tmp_path / "cache", remote)

    result = sweep_objects(store, set(), grace=0.0, now=time.time() + 10 * 86400)
    remote.fs.invalidate_cache()
    # gone, though longer keys under its name (ab/ccc.../../x) make it a "directory"
    assert result.removed == 1 and not remote.has(BLOB)
    for key in keys:
        assert remote.fs.cat_file(key) == b"not to be deleted", key
    # each top-level key or directory that is not a fan-out counts once, and is not
    # entered: the blob-looking key under evil/ is not even listed
    assert result.foreign >= 5
    listed = {e.name for e in remote.listing()}
    assert f"{prefix}/evil/ab/{'d' * 62}" not in listed
    assert not any(name.endswith("escaped") for name in listed), "no '..' directory entered"
