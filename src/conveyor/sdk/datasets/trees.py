"""Pure work on a dataset commit's files: what a put makes of them, listings, globs, diffs.

Files are a mapping of path -> ``TreeEntry`` (paths without a leading ``/``); directories
are implied by the files below them, as in Pachyderm (which keeps no empty directory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from conveyor.errors import NotFoundError
from conveyor.spec.patterns import pfs_matches
from conveyor.store.cas import TreeEntry

Files = Mapping[str, TreeEntry]


@dataclass(frozen=True)
class Listed:
    """One entry of a listing: a file, or a directory with the total size below it."""

    path: str
    kind: str  # "file" or "dir"
    size: int
    digest: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "path": "/" + self.path,
            "kind": self.kind,
            "size": self.size,
            "digest": self.digest,
        }


def directories(files: Iterable[str]) -> set[str]:
    """Every directory the files imply (not the root)."""
    found: set[str] = set()
    for path in files:
        parent = path.rpartition("/")[0]
        while parent and parent not in found:  # its own parents are in already
            found.add(parent)
            parent = parent.rpartition("/")[0]
    return found


def below(files: Files, path: str) -> dict[str, TreeEntry]:
    """The files at ``path`` (a file) or under it (a directory); all for the root."""
    if not path:
        return dict(files)
    if path in files:
        return {path: files[path]}
    prefix = path + "/"
    return {p: e for p, e in files.items() if p.startswith(prefix)}


def listing(files: Files, path: str) -> list[Listed]:
    """What ``ls`` shows at ``path``: the file itself, or a directory's direct children."""
    if path in files:
        entry = files[path]
        return [Listed(path, "file", entry.size, entry.digest)]
    inner = below(files, path)
    if path and not inner:
        raise NotFoundError(f"there is no file or directory /{path} in this commit")
    depth = len(path.split("/")) if path else 0
    children: dict[str, Listed] = {}
    for p, entry in inner.items():
        parts = p.split("/")
        child = "/".join(parts[: depth + 1])
        if len(parts) == depth + 1:
            children[child] = Listed(child, "file", entry.size, entry.digest)
        else:
            seen = children.get(child)
            children[child] = Listed(child, "dir", (seen.size if seen else 0) + entry.size)
    return [children[k] for k in sorted(children)]


def glob(files: Files, pattern: str) -> list[Listed]:
    """Files and directories a Pachyderm glob names (``/*``: every top-level entry)."""
    found: list[Listed] = []
    for directory in sorted(directories(files)):
        if pfs_matches(pattern, directory):
            size = sum(e.size for e in below(files, directory).values())
            found.append(Listed(directory, "dir", size))
    for path in sorted(files):
        if pfs_matches(pattern, path):
            entry = files[path]
            found.append(Listed(path, "file", entry.size, entry.digest))
    return sorted(found, key=lambda item: item.path)


def removed(files: Files, path: str) -> dict[str, TreeEntry]:
    """The files without ``path`` (a file, or a directory and all below it)."""
    gone = below(files, path)
    if not gone:
        raise NotFoundError(f"there is no file or directory /{path} to delete")
    return {p: e for p, e in files.items() if p not in gone}


def conflicts(files: Files, added: Iterable[str]) -> str | None:
    """A path that would be both a file and a directory once ``added`` join ``files``."""
    paths = set(files).union(added)
    for directory in directories(paths):
        if directory in paths:
            return directory
    return None


@dataclass(frozen=True)
class Diff:
    added: list[TreeEntry]
    removed: list[TreeEntry]
    changed: list[tuple[TreeEntry, TreeEntry]]

    def to_json(self) -> dict[str, object]:
        def one(e: TreeEntry) -> dict[str, object]:
            return {"path": "/" + e.path, "digest": e.digest, "size": e.size}

        return {
            "added": [one(e) for e in self.added],
            "removed": [one(e) for e in self.removed],
            "changed": [{"old": one(a), "new": one(b)} for a, b in self.changed],
        }


def diff(old: Files, new: Files) -> Diff:
    """What changed from ``old`` to ``new``, by path, each list sorted by path."""
    return Diff(
        added=[new[p] for p in sorted(set(new) - set(old))],
        removed=[old[p] for p in sorted(set(old) - set(new))],
        changed=[
            (old[p], new[p])
            for p in sorted(set(old) & set(new))
            if (old[p].digest, old[p].executable) != (new[p].digest, new[p].executable)
        ],
    )
