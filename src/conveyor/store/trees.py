"""Walking output trees without following links, and making a directory equal a tree."""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Iterator
from pathlib import Path

from conveyor.errors import StoreError


def scan(directory: Path) -> Iterator[tuple[Path, str, os.stat_result]]:
    """Everything below ``directory`` without following links: (path, kind, lstat).

    Kinds: file, link, dir (only empty ones: others are implied by what they hold), or
    the name of another file type (fifo, socket, device), which the caller refuses.
    """
    pending = [directory]  # no recursion: a tree may be deeper than Python's stack
    while pending:
        base = pending.pop()
        names = os.listdir(base)
        if base != directory and not names:
            yield base, "dir", os.lstat(base)
        for name in names:
            path = base / name
            st = os.lstat(path)
            if statmod.S_ISDIR(st.st_mode):
                pending.append(path)
                continue
            yield path, _kind(st.st_mode), st


def _kind(mode: int) -> str:
    if statmod.S_ISREG(mode):
        return "file"
    if statmod.S_ISLNK(mode):
        return "link"
    if statmod.S_ISFIFO(mode):
        return "a named pipe"
    if statmod.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def checked_link(path: Path, fence: str | None, shown: Path) -> str:
    """The link's target text, once it is known to resolve to something inside ``fence``."""
    target = os.readlink(path)
    where = os.path.relpath(path, shown)
    if not os.path.exists(path):
        raise StoreError(f"{where} is a dangling symbolic link (to {target})")
    resolved = os.path.realpath(path)
    if fence is not None and os.path.commonpath([fence, resolved]) != fence:
        raise StoreError(f"{where} is a symbolic link to {target}, outside the workspace")
    return target


def inside(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "." not in parts


def prune(dest: Path, files: set[str], links: dict[str, str], needed: set[str]) -> None:
    """Remove from ``dest`` what the tree does not hold, and any link not of the tree."""
    for dirpath, dirnames, filenames in os.walk(dest):
        base = Path(dirpath)
        for name in list(dirnames):
            path = base / name
            rel = path.relative_to(dest).as_posix()
            if path.is_symlink():
                dirnames.remove(name)
                if links.get(rel) != os.readlink(path):
                    path.unlink()
            elif rel not in needed:
                dirnames.remove(name)
                import shutil  # here: imported only when a put needs it

                shutil.rmtree(path)
        for name in filenames:
            path = base / name
            rel = path.relative_to(dest).as_posix()
            if path.is_symlink():
                if links.get(rel) != os.readlink(path):
                    path.unlink()
            elif rel not in files:
                path.unlink()
