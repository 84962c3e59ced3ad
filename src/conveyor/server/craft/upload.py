"""A pipeline's code folder as the SDK sends it (a gzipped tar) -> files in memory.

Read as data: regular files and directories only (links, devices and FIFOs refused),
paths kept inside the folder (no absolute path, no ``..``), and bounded at every level:
the decompressed stream, the number of members, each file and the total, so a zip bomb
or a slip out of the folder is one clear refusal."""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

from conveyor.server.craft.errors import CraftError

MAX_FILES = 10_000
MAX_TOTAL = 64 * 1024**2
"""Bytes of files once unpacked (Craft AI caps the included folders at 5 MB packed)."""
MAX_DEPTH = 32
MAX_PATH = 1024


@dataclass(frozen=True)
class CodeFile:
    path: str
    data: bytes
    executable: bool


class _Capped(io.RawIOBase):
    """A stream that refuses to give more than ``cap`` bytes (the decompressed tar)."""

    def __init__(self, inner: gzip.GzipFile, cap: int) -> None:
        self._inner = inner
        self._left = cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise _refused(f"the code folder unpacks to more than {MAX_TOTAL >> 20} MiB")
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def _refused(message: str) -> CraftError:
    return CraftError(400, "InvalidCodeFolder", message)


def safe_path(name: str) -> str:
    """A member's path inside the folder, normalised; a refusal for anything else."""
    if not name or len(name) > MAX_PATH or "\\" in name or "\0" in name:
        raise _refused(f"{name[:200]!r} is not a path the code folder may hold")
    if name.startswith("/"):
        raise _refused(f"{name[:200]!r} is an absolute path: the code folder holds relative ones")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise _refused(f"{name[:200]!r} leaves the code folder")
    if norm.count("/") >= MAX_DEPTH:
        raise _refused(f"{name[:200]!r} is nested deeper than {MAX_DEPTH} directories")
    return norm


def unpack(data: bytes) -> list[CodeFile]:
    """The regular files of a gzipped tar, checked (see the module docstring)."""
    # tar's own overhead (512-byte headers) is counted too: a generous bound on the stream
    stream = _Capped(gzip.GzipFile(fileobj=io.BytesIO(data)), MAX_TOTAL + 1024 * MAX_FILES)
    files: dict[str, CodeFile] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
            for member in tar:
                count += 1
                if count > MAX_FILES:
                    raise _refused(f"the code folder holds more than {MAX_FILES} entries")
                path = safe_path(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    kind = "a link" if member.issym() or member.islnk() else "not a regular file"
                    raise _refused(f"{path!r} is {kind}: the code folder may hold only files")
                total += member.size
                if total > MAX_TOTAL:
                    raise _refused(f"the code folder unpacks to more than {MAX_TOTAL >> 20} MiB")
                if path == "." or path in files:
                    raise _refused(f"{path!r} appears twice in the code folder")
                handle = tar.extractfile(member)
                content = handle.read() if handle else b""
                files[path] = CodeFile(path, content, bool(member.mode & 0o100))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise _refused(f"the code folder is not a gzipped tar archive ({exc})") from None
    for path in files:
        parent = posixpath.dirname(path)
        while parent:
            if parent in files:
                raise _refused(f"{parent!r} is both a file and a folder in the code folder")
            parent = posixpath.dirname(parent)
    return list(files.values())
