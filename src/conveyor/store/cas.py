"""A content-addressed blob store on a local directory.

Layout: ``objects/ab/cdef...`` (2-character fan-out) for blobs, ``tmp/`` for writes in
progress. A blob appears under its digest only by an atomic rename of a complete file,
so a reader never sees half a blob; a crash leaves at most a stray file in ``tmp/``,
which :meth:`ContentStore.clean_tmp` removes. Blobs are read-only once stored.
Directories are stored as a tree: a JSON manifest blob listing files (path, digest,
executable bit), symbolic links (path, target text) and empty directories. Links are
stored as links, never followed: one that dangles, or (given a boundary) resolves
outside it, is refused, and so is anything that is not a file, link or directory.
"""

import contextlib
import errno
import fcntl
import itertools
import json
import operator
import os
import stat as statmod
from collections.abc import Callable, Iterator
from functools import partial
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, Literal, NamedTuple, Protocol

import blake3

from conveyor.domain.types import Digest
from conveyor.errors import StoreError
from conveyor.store.hashing import Signature, hash_bytes, hash_fd, hash_file, signature
from conveyor.store.trees import checked_link, inside, prune, scan

_SMALL = 64 * 1024  # bytes: files up to this size are read once into memory
_WHOLE = 4 * 1024 * 1024  # bytes: `ingest` reads files below this size in one read
_CHUNK = 1024 * 1024
_OPEN = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO swapped in does not block
_FICLONE = 0x40049409  # Linux ioctl: share extents with another file (reflink)
_NO_REFLINK = (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EBADF)
CheckoutMode = Literal["copy", "link", "auto"]
Write = Callable[[], None]
"""A blob write left for later (see :meth:`ContentStore.put_file_later`)."""


class Digests(Protocol):
    """Where digests of source files come from (and go to): e.g. a DigestCache."""

    def digest(self, path: Path | str, stat: os.stat_result) -> Digest: ...

    def remember(self, path: Path | str, stat: os.stat_result, digest: str) -> None: ...


class TreeEntry(NamedTuple):
    path: str
    digest: Digest
    size: int
    executable: bool = False


class Ingested(NamedTuple):
    """A file stored by :meth:`ContentStore.ingest`."""

    digest: Digest
    size: int
    executable: bool
    read: Signature | None
    """The stat signature its content was read under, for the digest cache; None when
    the cache vouched for it, or when the file changed while it was read."""


class Manifest(NamedTuple):
    """A tree in full: files, links (path -> target) and empty directories."""

    files: list[TreeEntry]
    links: dict[str, str]
    dirs: list[str]


class _Uncached:
    def digest(self, path: Path | str, stat: os.stat_result) -> Digest:
        return hash_file(path, stat.st_size)

    def remember(self, path: Path | str, stat: os.stat_result, digest: str) -> None:
        pass


_UNCACHED = _Uncached()
_text = encode_basestring_ascii  # a JSON string as json.dumps writes it (ASCII)
_by_path = operator.attrgetter("path")


class ContentStore:
    """Blobs keyed by BLAKE3 digest under ``root``. Constructing it does no I/O."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._objects_text = os.fspath(self._objects)  # blob paths as strings: cheaper
        self._tmp = root / "tmp"
        self._made: set[str] = set()
        self._tmp_text = os.fspath(self._tmp)
        self._token = os.urandom(4).hex()  # tells apart two stores in one process
        self._writes = itertools.count(1)  # next() is atomic: threads share a store

    # -- reading --------------------------------------------------------------
    def path_of(self, digest: str) -> Path:
        return self._objects / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def local_path(self, digest: str) -> Path | None:
        """The blob's file on this machine (fetched first where this store is a cache in
        front of an object store), or None when the store has no such blob."""
        return self.path_of(digest) if self.has(digest) else None

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path_of(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest[:12]} is not in the store {self.root}") from None

    def read_tree(self, digest: str) -> list[TreeEntry]:
        """The files of a tree (links and empty directories: :meth:`read_manifest`)."""
        return self.read_manifest(digest).files

    def read_manifest(self, digest: str) -> Manifest:
        raw = self.read_bytes(digest)
        if hash_bytes(raw) != digest:  # cheap: manifests are small
            raise StoreError(f"tree manifest {digest[:12]} is damaged (run `conveyor verify`)")
        try:
            data = json.loads(raw)
            files = [
                TreeEntry(e["path"], Digest(e["digest"]), e["size"], e["x"])
                for e in data["entries"]
            ]
            links = {str(e["path"]): str(e["target"]) for e in data.get("links", [])}
            dirs = [str(d) for d in data.get("dirs", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"blob {digest[:12]} is not a tree manifest") from exc
        for path in [*(f.path for f in files), *links, *dirs]:
            if not inside(path):
                raise StoreError(f"tree {digest[:12]} names a path outside itself: {path!r}")
        return Manifest(files, links, dirs)

    def iter_digests(self) -> Iterator[Digest]:
        if not self._objects.is_dir():
            return
        for fan in sorted(self._objects.iterdir()):
            for blob in fan.iterdir():
                name = fan.name + blob.name
                with contextlib.suppress(ValueError):
                    yield Digest(name)

    # -- writing --------------------------------------------------------------
    def put_bytes(self, data: bytes) -> Digest:
        digest = hash_bytes(data)
        self._put_known(data, digest)
        return digest

    def _put_known(self, data: bytes, digest: str) -> None:
        if not self._touch_text(digest):
            self._write(data, digest)

    def put_file(self, source: Path | str, digests: Digests = _UNCACHED) -> tuple[Digest, int]:
        """Store a file's content; returns (digest, size). Identical content is stored once."""
        return self._put_file(source, digests, None)

    def put_file_later(
        self, source: Path | str, digests: Digests, st: os.stat_result
    ) -> tuple[Digest, int, Write | None]:
        """:meth:`put_file`, except that a small file's blob is written by the returned
        call (None: already stored). Its bytes are read now, so the blob holds what the
        file held now, whatever is written to the file afterwards; the caller makes the
        call before anything that names the blob is recorded. ``st``: the file's stat."""
        later: list[Write] = []
        digest, size = self._put_file(source, digests, later, st)
        return digest, size, later[0] if later else None

    def _put_file(
        self,
        source: Path | str,
        digests: Digests,
        later: list[Write] | None,
        st: os.stat_result | None = None,
    ) -> tuple[Digest, int]:
        st = st or os.stat(source)
        if st.st_size <= _SMALL:  # one read serves both the digest and the copy
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = _read_whole(fd, st.st_size)
            finally:
                os.close(fd)
            if len(data) == st.st_size:
                if later is None:
                    digest = self.put_bytes(data)
                else:  # the blob's file is created later, off the step's path
                    digest = hash_bytes(data)
                    later.append(partial(self._put_known, data, digest))
                digests.remember(source, st, digest)
                return digest, st.st_size
        digest = digests.digest(source, st)
        if not self._touch(digest):
            tmp = self._tmp_file()
            try:
                _clone_or_copy(source, tmp)
                self._publish(tmp, digest)
            finally:
                tmp.unlink(missing_ok=True)
        return digest, st.st_size

    def ingest(self, path: str, known: tuple[Signature, str] | None = None) -> Ingested:
        """Store one file of many (a put's): one open, fstat and read for a file below
        4 MiB (a larger one is read in chunks, never mapped), none when ``known`` (its
        digest cache row) matches its stat and the blob is here. Threads may call it at
        once: hashing and reads release the GIL.

        The digest is always that of the bytes stored: a file that changes while it is
        read is stored as read, and not vouched for to the cache."""
        try:
            if known is not None:  # one stat, and no open, for a file the cache vouches for
                st = os.stat(path)
                vouched = signature(st) == known[0] and statmod.S_ISREG(st.st_mode)
                if vouched and self._touch_text(known[1]):
                    executable = bool(st.st_mode & statmod.S_IXUSR)
                    return Ingested(Digest(known[1]), st.st_size, executable, None)
            fd = os.open(path, _OPEN)
        except OSError as exc:  # gone or unreadable since it was listed
            raise StoreError(f"{path}: cannot read it ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if not statmod.S_ISREG(st.st_mode):
                raise StoreError(f"{path} is no longer a regular file")
            executable = bool(st.st_mode & statmod.S_IXUSR)
            seen = signature(st)
            if st.st_size < _WHOLE:
                data = _read_whole(fd, st.st_size)
                digest = hash_bytes(data)
                if not self._touch_text(digest):
                    self._write(data, digest)
                same = len(data) == st.st_size
                return Ingested(digest, len(data), executable, seen if same else None)
            digest, read = hash_fd(fd, st.st_size)  # every core, read while hashed
            # unchanged while read: the same length, and the same stat after the read
            same = read == st.st_size and signature(os.fstat(fd)) == seen
            if self._touch_text(digest):
                return Ingested(digest, read, executable, seen if same else None)
            copied, size = self._copy_in(fd)
        finally:
            os.close(fd)
        same = same and copied == digest and size == st.st_size
        return Ingested(copied, size, executable, seen if same else None)

    def _copy_in(self, fd: int) -> tuple[Digest, int]:
        """Copy an open file into the store, hashing what was written: the blob's name
        is the digest of its content even if the file changes meanwhile. A reflink
        (btrfs, xfs) is a snapshot of its own, hashed after it is made."""
        tmp = self._tmp_name()
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            with open(out, "wb") as handle:
                if _reflinked(fd, out):
                    handle.close()
                    digest, size = hash_file(tmp), os.stat(tmp).st_size
                else:
                    digest, size = _copied(fd, handle)
            final = self.path_of(digest)
            self._ensure_dir(final.parent)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return digest, size

    def _write(self, data: bytes, digest: str) -> None:
        """Publish ``data`` (whose digest is ``digest``) as a blob, atomically."""
        tmp = self._tmp_name()
        # created read-only and written through the one descriptor: fewer system calls
        # per small output than mkstemp + reopen + chmod (they dominate on slow kernels)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            try:
                view = memoryview(data)
                while view:  # a plain write may be partial
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            fan = f"{self._objects_text}/{digest[:2]}"
            self._ensure_dir(fan)
            os.replace(tmp, f"{fan}/{digest[2:]}")  # atomic: readers see no blob or all of it
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_tree(
        self,
        directory: Path,
        digests: Digests = _UNCACHED,
        boundary: Path | None = None,
        files: list[TreeEntry] | None = None,
    ) -> tuple[Digest, int]:
        """Store every file below ``directory`` and a manifest; returns (manifest digest, size).

        Links must resolve to something that exists, inside ``boundary`` when given;
        errors name the path relative to ``boundary`` (else to ``directory``).
        ``files`` gets the tree's files as :meth:`read_tree` would give them back.
        """
        shown = boundary or directory
        fence: str | None = None  # the boundary's real path, found at the first link
        entries: list[dict[str, object]] = []
        links: list[dict[str, str]] = []
        dirs: list[str] = []
        total = 0
        for path, kind, st in sorted(scan(directory), key=lambda item: item[0]):
            rel = path.relative_to(directory).as_posix()
            if kind == "dir":
                dirs.append(rel)
            elif kind == "link":
                if fence is None and boundary is not None:
                    fence = os.path.realpath(boundary)
                links.append({"path": rel, "target": checked_link(path, fence, shown)})
            elif kind == "file":
                digest, size = self.put_file(path, digests)
                executable = bool(st.st_mode & statmod.S_IXUSR)
                entries.append({"path": rel, "digest": digest, "size": size, "x": executable})
                if files is not None:
                    files.append(TreeEntry(rel, digest, size, executable))
                total += size
            else:
                where = os.path.relpath(path, shown)
                raise StoreError(f"{where} is not a regular file, link or directory ({kind})")
        tree: dict[str, object] = {"kind": "tree", "entries": entries}
        if links:  # only when present: trees of plain files keep the digests they had
            tree["links"] = links
        if dirs:
            tree["dirs"] = dirs
        return self.put_bytes(json.dumps(tree, sort_keys=True).encode()), total

    def uploads(self) -> contextlib.AbstractContextManager[None]:
        """Writes made in this thread inside the block may finish together at its end
        (a store in front of an object store uploads them in parallel); here, nothing
        to wait for."""
        return contextlib.nullcontext()

    def put_manifest(self, files: list[TreeEntry]) -> Digest:
        """Store a tree of files already in the store (as :meth:`put_tree` writes it, so
        equal files give an equal digest); paths must stay inside the tree."""
        for entry in files:
            if not inside(entry.path):
                raise StoreError(f"a tree cannot hold the path {entry.path!r}")
        return self.put_bytes(manifest_bytes(files))

    def _touch(self, digest: str) -> bool:
        """Is the blob here? Then mark it as just stored, for a server's ``gc --grace``."""
        try:
            os.utime(self.path_of(digest))
        except FileNotFoundError:
            return False
        except PermissionError:  # a store shared read-only: present is enough
            return self.has(digest)
        return True

    def _touch_text(self, digest: str) -> bool:
        """:meth:`_touch` without a Path per call (a put asks once per file)."""
        try:
            os.utime(f"{self._objects_text}/{digest[:2]}/{digest[2:]}")
        except FileNotFoundError:
            return False
        except PermissionError:
            return self.has(digest)
        return True

    def _tmp_file(self) -> Path:
        self._ensure_dir(self._tmp)
        import tempfile  # (and random with it) for a put only, not a run of cache hits

        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        os.close(fd)
        return Path(name)

    def _tmp_name(self) -> str:
        """A name in tmp/ no other writer uses (process, store instance, counter)."""
        self._ensure_dir(self._tmp_text)
        return f"{self._tmp_text}/put-{os.getpid()}-{self._token}-{next(self._writes)}"

    def _publish(self, tmp: Path, digest: str) -> None:
        final = self.path_of(digest)
        self._ensure_dir(final.parent)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)  # atomic: readers see no blob or the whole blob

    def _ensure_dir(self, path: Path | str) -> None:
        text = os.fspath(path)
        if text not in self._made:
            try:  # one system call for a fan-out directory (makedirs stats its parent first)
                os.mkdir(text)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(text, exist_ok=True)
            self._made.add(text)

    # -- checkout -------------------------------------------------------------
    def checkout_file(
        self,
        digest: str,
        dest: Path,
        mode: CheckoutMode = "copy",
        executable: bool = False,
        verify: bool = False,
    ) -> None:
        """Materialise a blob at ``dest`` atomically (reflink where the filesystem can);
        with ``verify``, only once what was written hashes to ``digest``."""
        blob = self.path_of(digest)
        if not blob.is_file():
            raise StoreError(f"blob {digest[:12]} for {dest} is not in the store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.conveyor-tmp")
        tmp.unlink(missing_ok=True)
        try:
            if mode == "link":
                try:
                    os.link(blob, tmp)
                except OSError:
                    _clone_or_copy(blob, tmp)
            else:
                _clone_or_copy(blob, tmp)
                os.chmod(tmp, 0o755 if executable else 0o644)
            if verify and hash_file(tmp) != digest:
                raise StoreError(
                    f"blob {digest[:12]} for {dest} is damaged; `conveyor verify --repair` "
                    "quarantines it"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def checkout_tree(
        self, digest: str, dest: Path, mode: CheckoutMode = "copy", verify: bool = False
    ) -> None:
        """Make ``dest`` equal the tree: files, links and empty directories."""
        tree = self.read_manifest(digest)
        files = {e.path for e in tree.files}
        needed = {str(p) for item in (*files, *tree.links) for p in Path(item).parents}
        needed.update(tree.dirs)
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            dest.unlink()
        elif dest.is_dir():  # drop what the tree does not hold; never write through a link
            prune(dest, files, tree.links, needed)
        dest.mkdir(parents=True, exist_ok=True)
        for rel in tree.dirs:
            (dest / rel).mkdir(parents=True, exist_ok=True)
        for entry in tree.files:
            self.checkout_file(entry.digest, dest / entry.path, mode, entry.executable, verify)
        for rel, target in tree.links.items():
            path = dest / rel
            if path.is_symlink() and os.readlink(path) == target:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.conveyor-tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, path)

    # -- maintenance ----------------------------------------------------------
    def remove(self, digest: str) -> int:
        path = self.path_of(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def intact(self, digest: str) -> bool:
        """Rehash a blob: does its content still match its name?"""
        path = self.path_of(digest)
        return hash_file(path, path.stat().st_size) == digest

    def quarantine(self, digest: str) -> Path | None:
        """Move a damaged blob out of ``objects/`` (kept for inspection in ``quarantine/``),
        so no cache hit serves it again; returns where it went."""
        target = self.root / "quarantine" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(self.path_of(digest), target)
        except FileNotFoundError:
            return None
        return target

    def clean_tmp(self) -> int:
        """Remove leftovers of interrupted writes; returns how many."""
        if not self._tmp.is_dir():
            return 0
        count = 0
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
            count += 1
        return count


def manifest_bytes(files: list[TreeEntry]) -> bytes:
    """A tree of files as :meth:`ContentStore.put_tree` writes it: the text of
    ``json.dumps(tree, sort_keys=True)``, written directly (twice as fast for a put of
    many files; a test holds the two equal, so trees keep their digests)."""
    body = ", ".join(
        [
            f'{{"digest": {_text(e.digest)}, "path": {_text(e.path)}, '
            f'"size": {int(e.size)}, "x": {"true" if e.executable else "false"}}}'
            for e in sorted(files, key=_by_path)
        ]
    )
    return f'{{"entries": [{body}], "kind": "tree"}}'.encode()


def _reflinked(source: int, dest: int) -> bool:
    try:
        fcntl.ioctl(dest, _FICLONE, source)
    except OSError as exc:
        if exc.errno in _NO_REFLINK:
            return False
        raise
    return True


def _copied(fd: int, handle: IO[bytes]) -> tuple[Digest, int]:
    """Copy ``fd`` from its start into ``handle``; the digest of what was written."""
    hasher = blake3.blake3()
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, _CHUNK):
        hasher.update(chunk)
        handle.write(chunk)
        size += len(chunk)
    return Digest(hasher.hexdigest()), size


def _read_whole(fd: int, size: int) -> bytes:
    """A file's bytes to its end: one read when its size is still ``size`` (a short
    read of a regular file is its end), more when it grew or shrank meanwhile."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    while data:
        data = os.read(fd, _CHUNK)
        parts.append(data)
    return b"".join(parts)


def _clone_or_copy(source: Path | str, dest: Path) -> None:
    """Reflink when the filesystem shares extents (btrfs, xfs), else a kernel-side copy."""
    with open(source, "rb") as src, open(dest, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError as exc:
            if exc.errno not in _NO_REFLINK:
                raise
    import shutil

    shutil.copyfile(source, dest)
