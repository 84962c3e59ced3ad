"""Blobs in an object store: S3 and S3-compatible services, or whatever else fsspec
speaks (GCS, Azure, SFTP... once their fsspec package is installed), under one prefix.

A blob's key is ``PREFIX/ab/cdef...``, made only from a validated digest, so nothing
outside the prefix can be named. A key is written whole or not at all: object stores
(S3, GCS, Azure) publish a PUT atomically and a digest-named key is idempotent, so it
is written in place; elsewhere (SFTP, a mounted filesystem) it is written under
``PREFIX/tmp/`` and moved into place. Credentials stay in the filesystem's options and
are never part of a message.

Garbage collection (``conveyor server gc``) deletes objects no record names and not
written for a grace period, by their modification time. So a blob this process
relies on is never older than that, an upload it skips is skipped only for an object
it saw written in the last ``_TRUST`` seconds: past that it is written again (or, for a
large blob, asked about and written again when older).
"""

from __future__ import annotations

import re
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.errors import StoreError, UsageError

DIGEST = re.compile(r"^[0-9a-f]{64}$")
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_S3 = frozenset({"s3", "s3a"})
# short waits: an endpoint that is down is one clear error, not minutes of retries
_S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}},
}
_MAX_CREDENTIALS = 64 * 1024  # bytes: a credentials file is a few lines
_ASK_FIRST = 1024 * 1024  # bytes: larger blobs are uploaded only when the store lacks them
_MAX_KNOWN = 100_000  # digests remembered as present: beyond, forgotten (asked again)
_TRUST = 1800.0  # seconds an object seen written is trusted to stay (gc's grace is longer)
_FAN = re.compile(r"[0-9a-f]{2}")
_MANIFEST_STARTS = (b'{"dirs": [', b'{"entries": [')  # put_tree's JSON (sorted keys)


@dataclass(frozen=True)
class Listed:
    """One object of a listing: ``digest`` is None for a key that names no blob (left
    alone: it is never deleted, and never followed when it is a directory)."""

    name: str
    digest: str | None
    size: int
    mtime: float | None


@dataclass(frozen=True)
class ObjectStoreSettings:
    """Where blobs go: ``url`` (``s3://bucket/prefix``, ``gs://...``, ``sftp://host/dir``),
    an S3-compatible ``endpoint`` and a ``credentials`` file (a TOML table of the
    filesystem's options: ``key``/``secret`` for S3); without one, the filesystem's own
    sources (for S3: ``AWS_*`` variables, ``~/.aws``)."""

    url: str
    endpoint: str | None = None
    credentials: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # options may hold a secret: never shown
        return f"ObjectStoreSettings(url={self.url!r}, endpoint={self.endpoint!r})"


def digest_key(prefix: str, digest: str) -> str:
    """The key of a blob: only a full lower-case BLAKE3 digest names one."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise StoreError(f"{digest!r:.80} is not a blob digest (64 lower-case hex digits)")
    return f"{prefix}/{digest[:2]}/{digest[2:]}"


def read_credentials(path: Path) -> dict[str, Any]:
    """The options in a credentials file (its values are never echoed)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_CREDENTIALS + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read the object store credentials {path}: {exc.strerror}"
        ) from None
    if len(raw) > _MAX_CREDENTIALS:
        raise UsageError(f"{path}: an object store credentials file holds at most 64 KiB")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # the message of a TOML error quotes no value, only where it is
        raise UsageError(f"{path}: not a TOML table of options ({type(exc).__name__})") from None
    return data


class ObjectStore:
    """Blobs by digest under one prefix of an fsspec filesystem. Constructing it does
    no I/O; the filesystem is opened on first use."""

    def __init__(self, settings: ObjectStoreSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.protocol, sep, rest = self.url.partition("://")
        if not sep or not self.protocol or not rest.strip("/"):
            raise UsageError(
                f"{settings.url!r} is not an object store URL (e.g. s3://bucket/prefix)"
            )
        if settings.endpoint and self.protocol not in _S3:
            raise UsageError("an object store endpoint is for s3:// URLs only")
        self._fs: Any = None
        self._prefix = ""
        self._lock = threading.Lock()
        self._present: dict[str, float] = {}  # seen intact by this process: when (monotonic)
        self._damaged: set[str] = set()  # fetched damaged: the next put overwrites it

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs, self._prefix = self._open()
        return self._fs

    def _open(self) -> tuple[Any, str]:
        options: dict[str, Any] = dict(_S3_DEFAULTS) if self.protocol in _S3 else {}
        if self.settings.endpoint:
            options["endpoint_url"] = self.settings.endpoint
        if self.settings.credentials is not None:
            options.update(read_credentials(self.settings.credentials))
        for name, value in self.settings.options.items():
            if name == "config_kwargs" and isinstance(value, Mapping):  # over the defaults
                value = {**options.get(name, {}), **value}
            options[name] = value
        try:
            import fsspec  # imported only by a server that has an object store

            fs, path = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            hint = " (install conveyor[s3])" if self.protocol in _S3 else ""
            raise UsageError(f"cannot open the object store {self.url}: {exc}{hint}") from None
        return fs, str(path).rstrip("/")

    def key(self, digest: str) -> str:
        self.fs  # noqa: B018 (the prefix is known once the filesystem is open)
        return digest_key(self._prefix, digest)

    def has(self, digest: str) -> bool:
        key = self.key(digest)
        try:  # a "directory" of longer keys is no blob
            return bool(self.fs.info(key).get("type") == "file")
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unreachable(exc) from None

    def download(self, digest: str, dest: Path) -> bool:
        """Copy a blob's object to ``dest`` (unchecked: the caller hashes it); False when
        the store has no such object."""
        key = self.key(digest)
        try:
            self.fs.get_file(key, str(dest))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unreachable(exc) from None
        return True

    def upload(self, source: Path, digest: str) -> None:
        """Write a blob's object from ``source`` (whose content hashes to ``digest``)."""
        key = self.key(digest)
        try:
            if self.protocol in _ATOMIC_PUT:
                self.fs.put_file(str(source), key)
            else:
                tmp = f"{self._prefix}/tmp/{uuid.uuid4().hex}"
                self.fs.makedirs(f"{self._prefix}/tmp", exist_ok=True)
                self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(source), tmp)
                self.fs.mv(tmp, key)
        except Exception as exc:
            raise self._unreachable(exc) from None

    def ensure(self, source: Path, digest: str, size: int) -> None:
        """Upload a blob unless the store already holds it (and it was not found damaged).
        A small blob is uploaded without asking first: one request instead of two (or
        three: a missing key costs s3fs a HEAD and a listing), and rewriting a
        digest-named key with the same bytes changes nothing."""
        with self._lock:
            seen_at = self._present.get(digest)
            if seen_at is not None and time.monotonic() - seen_at < _TRUST:
                return
            damaged = digest in self._damaged
        if damaged or size <= _ASK_FIRST or not self._fresh(digest):
            self.upload(source, digest)
        self.seen(digest)

    def _fresh(self, digest: str) -> bool:
        """Does the store hold the blob, written in the last ``_TRUST`` seconds? An older
        object is written again: its new time keeps it from a gc that began before the
        record naming it was made."""
        key = self.key(digest)
        try:
            info = self.fs.info(key)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unreachable(exc) from None
        written = mtime_of(info)
        return written is not None and time.time() - written < _TRUST

    def seen(self, digest: str) -> None:
        """The store holds the blob intact, written just now."""
        with self._lock:
            if len(self._present) >= _MAX_KNOWN:
                self._present.clear()
            self._present[digest] = time.monotonic()
            self._damaged.discard(digest)

    def intact(self, digest: str) -> None:
        """The blob's object was fetched intact (not marked as present: it may be old,
        and only a write makes it young again)."""
        with self._lock:
            self._damaged.discard(digest)

    def refused(self, digest: str) -> None:
        """The store's object of ``digest`` does not hash to it."""
        with self._lock:
            self._present.pop(digest, None)
            if len(self._damaged) < _MAX_KNOWN:
                self._damaged.add(digest)

    # -- garbage collection ---------------------------------------------------
    def listing(self, progress: Callable[[int, int], None] | None = None) -> Iterator[Listed]:
        """Every object under the prefix, one fan-out directory at a time
        (``progress(directories done, directories)`` after each). Only ``PREFIX/ab/``
        directories are listed; any other key is reported as naming no blob."""
        base = self.key("0" * 64).rsplit("/", 2)[0]
        tops = self._ls(base)
        fans = [e for e in tops if _child(base, e) is not None and _is_dir(e)]
        fans = [e for e in fans if _FAN.fullmatch(_child(base, e) or "")]
        for entry in tops:
            if entry not in fans:
                yield Listed(str(entry.get("name", "")), None, _size(entry), mtime_of(entry))
        for done, fan in enumerate(fans, 1):
            fan_name = f"{base}/{_child(base, fan)}"
            for entry in self._ls(fan_name):
                rest = _child(fan_name, entry)
                digest = None
                if (
                    rest is not None
                    and not _is_dir(entry)
                    and DIGEST.fullmatch(fan_name[-2:] + rest)
                ):
                    digest = fan_name[-2:] + rest
                yield Listed(str(entry.get("name", "")), digest, _size(entry), mtime_of(entry))
            if progress is not None:
                progress(done, len(fans))

    def _ls(self, path: str) -> list[dict[str, Any]]:
        try:
            self.fs.invalidate_cache(path)  # a listing is of now, not of a cache
            return [e for e in self.fs.ls(path, detail=True) if isinstance(e, dict)]
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._unreachable(exc) from None

    def delete(self, digest: str) -> None:
        """Delete a blob's object: the key is made from the digest, never taken from a
        listing. This process forgets it was there."""
        key = self.key(digest)
        with self._lock:
            self._present.pop(digest, None)
        try:
            self.fs.rm_file(key)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._unreachable(exc) from None

    def is_manifest(self, digest: str) -> bool:
        """Does the blob's object start like a tree manifest? (A few bytes are read: a
        large output is not downloaded to learn it is not a tree.)"""
        key = self.key(digest)
        try:
            head = bytes(self.fs.cat_file(key, start=0, end=16))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._unreachable(exc) from None
        return head.startswith(_MANIFEST_STARTS)

    def _unreachable(self, exc: BaseException) -> StoreError:
        # the endpoint and the URL only: an exception's text may carry a signed request
        at = f" at {self.settings.endpoint}" if self.settings.endpoint else ""
        return StoreError(
            f"the object store {self.url}{at} failed ({type(exc).__name__}): is it "
            "reachable, and are its credentials right?"
        )


def _child(parent: str, entry: Mapping[str, Any]) -> str | None:
    """The last part of an entry's name when it is directly under ``parent``."""
    name = str(entry.get("name", "")).rstrip("/")
    rest = name.removeprefix(parent + "/")
    return rest if rest != name and rest and "/" not in rest else None


def _is_dir(entry: Mapping[str, Any]) -> bool:
    return entry.get("type") != "file"


def _size(entry: Mapping[str, Any]) -> int:
    size = entry.get("size") or entry.get("Size") or 0
    return size if isinstance(size, int) else 0


def mtime_of(info: Mapping[str, Any]) -> float | None:
    """When an object was last written, from a listing or ``info`` entry (S3's
    ``LastModified``, the local and SFTP filesystems' ``mtime``, GCS's ``updated``,
    Azure's ``last_modified``, else when it was created: fsspec's memory filesystem);
    None when the filesystem gives none."""
    for name in ("LastModified", "mtime", "updated", "last_modified", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None
