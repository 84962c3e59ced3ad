"""A local directory as the listing of a Pachyderm input: its files and their digests.

What ``conveyor pipeline datums --input NAME=DIR`` reads before datasets exist. The walk
never follows a symbolic link (a link is refused: a dataset holds files only) and stops
at :data:`MAX_FILES`; each file is hashed with BLAKE3, as the store hashes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from conveyor.errors import UsageError
from conveyor.store.hashing import hash_file

PROGRESS_EVERY = 500
MAX_FILES = 1_000_000
"""The most files one input directory may hold."""


def list_directory(
    root: Path, shown: str, progress: Callable[[int], None] | None = None
) -> list[tuple[str, str]]:
    """``(path from root, digest)`` of every file under ``root``, sorted; ``progress``
    hears the number of files hashed so far, every :data:`PROGRESS_EVERY` files."""
    if not root.is_dir():
        raise UsageError(f"{shown} is not a directory")
    out: list[tuple[str, str]] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(root / relative if relative else root) as entries:
            for entry in entries:
                path = f"{relative}/{entry.name}" if relative else entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)
                elif stat.S_ISREG(info.st_mode):
                    out.append((path, str(hash_file(entry.path, info.st_size))))
                    if progress is not None and len(out) % PROGRESS_EVERY == 0:
                        progress(len(out))
                    if len(out) > MAX_FILES:
                        raise UsageError(f"{shown} holds more than {MAX_FILES} files")
                else:
                    raise UsageError(
                        f"{shown}/{path} is not a regular file or directory (a link, a "
                        "pipe or a device); an input holds files only"
                    )
    return sorted(out)
