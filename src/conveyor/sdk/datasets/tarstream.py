"""A put of many files in one request (``data put DIR --remote``): an uncompressed tar
stream, written by the client file by file without holding one in memory, and read by
the server as data.

Reading never extracts by name: each regular file's bytes go to a numbered scratch file
and its name is only a dataset path, checked like any other (no absolute path, no
``..``, no NUL, bounded length). Links, hard links, devices, FIFOs, sparse files and
duplicate paths refuse the whole put in one sentence; so do more than ``max_files``
files or a stream cut short. Uncompressed, a stream holds at least the bytes it
declares, so the body cap bounds what is written (no decompression bomb).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from conveyor.errors import UsageError
from conveyor.sdk.datasets.put import Progress, Source
from conveyor.sdk.datasets.refs import check_path

BLOCK = 512
CHUNK = 1024 * 1024
MAX_FILES = 100_000  # files in one put over HTTP


def write_tar(sources: list[Source], progress: Progress | None = None) -> Iterator[bytes]:
    """The tar stream of ``sources`` (each a file on disk), in chunks: a header, the
    file's bytes as they are read, its padding; two empty blocks at the end.
    ``progress`` hears of each file sent (files sent, files, bytes of content sent)."""
    sent = 0
    for done, source in enumerate(sources, 1):
        assert source.file is not None  # standard input goes as one file, not a tree
        with open(source.file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            info = tarfile.TarInfo(source.target)
            info.size = size
            info.mode = 0o755 if os.stat(source.file).st_mode & 0o100 else 0o644
            yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            left = size
            while left:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    raise UsageError(f"{source.file} shrank while it was being sent; put again")
                left -= len(chunk)
                yield chunk
            if size % BLOCK:
                yield b"\0" * (BLOCK - size % BLOCK)
        sent += size
        if progress is not None:
            progress(done, len(sources), sent)
    yield b"\0" * (2 * BLOCK)


def read_tar(body: IO[bytes], scratch: Path, max_files: int = MAX_FILES) -> list[Source]:
    """The files of a tar stream, each written to ``scratch`` under a number; their
    dataset paths checked. UsageError (nothing kept by the caller) for anything else."""
    sources: list[Source] = []
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=body, mode="r|") as tar:
            for member in tar:
                if member.isdir():
                    continue  # empty directories are not kept (Pachyderm keeps none)
                name = _checked_name(member)
                if name in seen:
                    raise UsageError(f"the put names /{name} twice")
                seen.add(name)
                if len(sources) >= max_files:
                    raise UsageError(f"a put over HTTP holds at most {max_files} files")
                target = scratch / str(len(sources))
                data = tar.extractfile(member)
                assert data is not None  # a regular file has data
                with open(target, "xb") as out:
                    while chunk := data.read(CHUNK):
                        out.write(chunk)
                if member.mode & 0o100:
                    target.chmod(0o755)
                sources.append(Source(name, os.fspath(target)))
    except (tarfile.TarError, EOFError) as exc:
        raise UsageError(f"the body is not a whole tar stream ({exc})") from None
    if not sources:
        raise UsageError("nothing to put: the tar stream holds no files")
    return sources


def _checked_name(member: tarfile.TarInfo) -> str:
    shown = member.name[:200]
    if member.issym() or member.islnk():
        raise UsageError(f"{shown} is a link: a put over HTTP takes regular files only")
    if member.issparse():
        raise UsageError(f"{shown} is a sparse file: a put over HTTP takes regular files only")
    if not member.isreg():
        raise UsageError(f"{shown} is not a regular file (a device, FIFO or other)")
    if member.name.startswith("/"):
        raise UsageError(f"{shown} is an absolute path: name files from the dataset's root")
    if "\\" in member.name or any(p == ".." for p in member.name.split("/")):
        raise UsageError(f"{shown} leaves the dataset ('..' or a backslash)")
    name = check_path(member.name)
    if not name:
        raise UsageError("a file of the put has an empty name")
    return name
