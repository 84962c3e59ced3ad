"""Content-addressed storage and hashing; knows nothing about pipelines."""

from conveyor.store.cas import ContentStore, TreeEntry
from conveyor.store.hashing import DigestCache, hash_bytes, hash_file

__all__ = ["ContentStore", "DigestCache", "TreeEntry", "hash_bytes", "hash_file"]
