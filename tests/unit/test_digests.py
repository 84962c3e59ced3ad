"""The interpreter's own SHA-256 and BLAKE2b give hashlib's digests: a step's tracking
directory and the environment digest stay what they were."""

from __future__ import annotations

import hashlib

from conveyor.domain.digests import blake2b, sha256
from conveyor.domain.tracking import tracking_path


def test_the_digests_are_hashlibs() -> None:
    for data in (b"", b"step", "job.stëp".encode(), bytes(range(256)) * 9):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        made = blake2b(data, digest_size=16)
        made.update(b"\0more")
        expected = hashlib.blake2b(data, digest_size=16)
        expected.update(b"\0more")
        assert made.hexdigest() == expected.hexdigest()


def test_a_tracking_directory_is_named_as_before() -> None:
    assert tracking_path("prep.make") == (
        ".conveyor/tracking/" + hashlib.sha256(b"prep.make").hexdigest()[:24]
    )
