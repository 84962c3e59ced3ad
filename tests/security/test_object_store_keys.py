"""An object store holds the blobs of every project under one prefix: only a digest
names a key, so no request, record or manifest can reach a key outside the prefix (or
another prefix of the same bucket), and the store's credentials appear in no message."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conveyor.errors import StoreError, UsageError
from conveyor.store.cached import CachedStore
from conveyor.store.objects import ObjectStore, ObjectStoreSettings, digest_key

GOOD = "a" * 64
NOT_DIGESTS = [
    "../" + "a" * 61,
    "ab/../../other-prefix/x" + "a" * 41,
    "A" * 64,  # upper case would be a second key for one blob
    "a" * 63,
    "a" * 65,
    "a" * 63 + "/",
    "/" + "a" * 63,
    "a" * 62 + "\n",
    "a" * 63 + "\x00",
    "",
    "*" * 64,
    "a" * 32 + "%2e%2e" + "a" * 26,
]


@pytest.mark.parametrize("name", NOT_DIGESTS)
def test_only_a_digest_names_a_key(name: str) -> None:
    with pytest.raises(StoreError, match="not a blob digest"):
        digest_key("bucket/prefix", name)


def test_a_key_is_always_under_the_prefix() -> None:
    assert digest_key("bucket/prefix", GOOD) == f"bucket/prefix/aa/{'a' * 62}"


@pytest.mark.parametrize("name", NOT_DIGESTS)
def test_no_store_operation_takes_a_name_that_is_not_a_digest(tmp_path: Path, name: str) -> None:
    bucket = f"memory://attack-{uuid.uuid4().hex}"
    remote = ObjectStore(ObjectStoreSettings(f"{bucket}/prefix"))
    remote.fs.pipe_file(f"/attack-{bucket.rsplit('-', 1)[1]}/secret", b"another prefix")
    store = CachedStore(tmp_path / "cache", remote)
    for operation in (remote.has, store.fetch):
        with pytest.raises(StoreError, match="not a blob digest"):
            operation(name)
    with pytest.raises(StoreError, match="not a blob digest"):
        remote.download(name, tmp_path / "out")
    source = tmp_path / "src"
    source.write_bytes(b"x")
    with pytest.raises(StoreError, match="not a blob digest"):
        remote.upload(source, name)
    assert not (tmp_path / "out").exists()


def test_credentials_never_appear_in_a_message_or_a_repr(tmp_path: Path) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    creds = tmp_path / "creds.toml"
    creds.write_text(f'key = "id"\nsecret = "{secret}"\n')
    settings = ObjectStoreSettings(
        "s3://bucket/prefix",
        endpoint="http://127.0.0.1:9",  # nothing listens: the request fails
        credentials=creds,
        options={"secret": secret, "config_kwargs": {"connect_timeout": 1}},
    )
    assert secret not in repr(settings)
    with pytest.raises(StoreError) as caught:
        ObjectStore(settings).has(GOOD)
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_broken_credentials_file_is_named_without_its_values(tmp_path: Path) -> None:
    creds = tmp_path / "creds.toml"
    creds.write_text('secret = "hunter2-value\n')  # an unterminated string
    with pytest.raises(UsageError) as caught:
        ObjectStore(ObjectStoreSettings("s3://b/p", credentials=creds)).has(GOOD)
    assert "hunter2" not in str(caught.value)
    assert str(creds) in str(caught.value)
