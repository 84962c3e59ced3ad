"""The local store as a cache in front of an object store (several machines, one store).

Reads fall through: a blob missing here is fetched from the object store into ``tmp/``
and published under its digest only when its content hashes to it (a damaged object
is refused, and written again from the next good copy). Writes go through: a blob
stored here is uploaded unless the object store already holds it. Inside
:meth:`CachedStore.uploads` (a step's outputs), the uploads of one thread's writes are
held and made at the end of the block on a small pool of threads, trees' manifests
after the files they list: an object store never holds a tree whose files it lacks.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.domain.types import Digest
from conveyor.errors import StoreError
from conveyor.store.cas import (
    _UNCACHED,
    CheckoutMode,
    ContentStore,
    Digests,
    Ingested,
    TreeEntry,
    Write,
)
from conveyor.store.hashing import Signature, hash_file
from conveyor.store.objects import ObjectStore

UPLOADERS = 8
"""Uploads at once per block of writes: enough to hide request latency, few enough
for an endpoint shared by every worker."""


@dataclass
class _Held:
    """The uploads held in one thread's block: files first, then manifests."""

    files: dict[str, None] = field(default_factory=dict)  # ordered, each once
    manifests: dict[str, None] = field(default_factory=dict)


class CachedStore(ContentStore):
    """A :class:`ContentStore` at ``root`` backed by ``remote``."""

    def __init__(self, root: Path, remote: ObjectStore) -> None:
        super().__init__(root)
        self.remote = remote
        self._held = threading.local()

    # -- reading --------------------------------------------------------------
    def has(self, digest: str) -> bool:
        return super().has(digest) or self.remote.has(digest)

    def fetch(self, digest: str) -> bool:
        """Make the blob local (from the object store when missing); False when neither
        holds it. Raises :class:`StoreError` when the object is damaged."""
        if super().has(digest):
            return True
        tmp = self._tmp_file()
        try:
            if not self.remote.download(digest, tmp):
                return False
            if hash_file(tmp) != digest:
                self.remote.refused(digest)
                raise StoreError(
                    f"blob {digest[:12]} in the object store {self.remote.url} is damaged "
                    "(its content does not hash to its name); it was not restored"
                )
            self._publish(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        self.remote.intact(digest)
        return True

    def local_path(self, digest: str) -> Path | None:
        return self.path_of(digest) if self.fetch(digest) else None

    def read_bytes(self, digest: str) -> bytes:
        self.fetch(digest)
        return super().read_bytes(digest)

    def checkout_file(
        self,
        digest: str,
        dest: Path,
        mode: CheckoutMode = "copy",
        executable: bool = False,
        verify: bool = False,
    ) -> None:
        self.fetch(digest)
        super().checkout_file(digest, dest, mode, executable, verify)

    # -- writing --------------------------------------------------------------
    def put_bytes(self, data: bytes) -> Digest:
        digest = super().put_bytes(data)
        self._push(digest)
        return digest

    def put_file(self, source: Path | str, digests: Digests = _UNCACHED) -> tuple[Digest, int]:
        digest, size = super().put_file(source, digests)
        self._push(digest)
        return digest, size

    def put_file_later(
        self, source: Path | str, digests: Digests, st: os.stat_result
    ) -> tuple[Digest, int, Write | None]:
        """Stored now: an upload needs the local blob."""
        digest, size = self.put_file(source, digests)
        return digest, size, None

    def ingest(self, path: str, known: tuple[Signature, str] | None = None) -> Ingested:
        stored = super().ingest(path, known)
        self._push(stored.digest)
        return stored

    def put_tree(
        self,
        directory: Path,
        digests: Digests = _UNCACHED,
        boundary: Path | None = None,
        files: list[TreeEntry] | None = None,
    ) -> tuple[Digest, int]:
        with self.uploads():
            digest, size = super().put_tree(directory, digests, boundary, files)
            held: _Held = self._held.block
            held.files.pop(digest, None)  # its manifest: uploaded after its files
            held.manifests[digest] = None
        return digest, size

    @contextlib.contextmanager
    def uploads(self) -> Iterator[None]:
        """Hold this thread's uploads until the end of the block, then make them in
        parallel (a block inside another joins it). Raises :class:`StoreError` when one
        fails; an exception inside the block drops them (a later write of the same
        content uploads it: it is not marked as present)."""
        if getattr(self._held, "block", None) is not None:
            yield
            return
        held = self._held.block = _Held()
        try:
            yield
        finally:
            self._held.block = None
        self._upload_all(list(held.files))
        self._upload_all(list(held.manifests))

    def _upload_all(self, digests: list[str]) -> None:
        if len(digests) <= 1:
            for digest in digests:
                self._upload(digest)
            return
        with ThreadPoolExecutor(min(UPLOADERS, len(digests)), "conveyor-upload") as pool:
            for future in [pool.submit(self._upload, d) for d in digests]:
                future.result()  # the first failure is raised; the pool finishes the rest

    def _push(self, digest: str) -> None:
        held: _Held | None = getattr(self._held, "block", None)
        if held is None:
            self._upload(digest)
        elif digest not in held.manifests:
            held.files[digest] = None

    def _upload(self, digest: str) -> None:
        path = self.path_of(digest)
        self.remote.ensure(path, digest, path.stat().st_size)
