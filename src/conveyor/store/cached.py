"""The local store as a cache in front of an object store (several machines, one store).

Reads fall through: a blob missing here is fetched from the object store into ``tmp/``
and published under its digest only when its content hashes to it (a damaged object
is refused, and written again from the next good copy). Writes go through: a blob
stored here is uploaded unless the object store already holds it.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.domain.types import Digest
from conveyor.errors import StoreError
from conveyor.store.cas import _UNCACHED, CheckoutMode, ContentStore, Digests
from conveyor.store.hashing import hash_file
from conveyor.store.objects import ObjectStore


class CachedStore(ContentStore):
    """A :class:`ContentStore` at ``root`` backed by ``remote``."""

    def __init__(self, root: Path, remote: ObjectStore) -> None:
        super().__init__(root)
        self.remote = remote

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
        self.remote.seen(digest)
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

    def _push(self, digest: str) -> None:
        path = self.path_of(digest)
        self.remote.ensure(path, digest, path.stat().st_size)
