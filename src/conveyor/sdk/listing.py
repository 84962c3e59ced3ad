"""The project's files as the plan compiler sees them (what ``datums`` globs match)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.plan.graph import normalize
from conveyor.spec.patterns import glob_paths, is_glob, matches
from conveyor.vcs.git import run_git

_PRIVATE = (".git", ".conveyor")


class ProjectFiles:
    """A lister for :func:`conveyor.plan.compile.compile_plan` over one project
    directory; it remembers what each pattern matched, so a cached plan can be checked
    against the files as they are now."""

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)
        self.seen: dict[str, tuple[str, ...]] = {}

    def __call__(self, pattern: str) -> tuple[str, ...]:
        found = self.seen.get(pattern)
        if found is None:
            found = self._list(pattern)
            self.seen[pattern] = found
        return found

    def unchanged(self, seen: Mapping[str, Sequence[str]]) -> bool:
        """Whether every pattern still matches exactly what it matched then."""
        return all(self(pattern) == tuple(paths) for pattern, paths in seen.items())

    def _list(self, pattern: str) -> tuple[str, ...]:
        if not is_glob(pattern):
            exists = os.path.lexists(os.path.join(self.root, pattern))
            return (normalize(pattern),) if exists else ()
        matches = glob_paths(pattern, self.root)
        return tuple(
            sorted(
                normal
                for normal in map(normalize, matches)
                if normal.split("/", 1)[0] not in _PRIVATE
            )
        )


class TreeFiles:
    """The same lister over a commit's tree in a repository (what :class:`ProjectFiles`
    would list in a checkout of it), for a page that draws a pushed run's plan. A tree
    of more than ``limit`` entries lists nothing (the plan then says its datums match
    no file) rather than holding the page."""

    def __init__(self, repo: Path, commit: str, limit: int = 200_000) -> None:
        self.repo, self.commit, self.limit = repo, commit, limit
        self._tree: tuple[frozenset[str], frozenset[str]] | None = None

    def __call__(self, pattern: str) -> tuple[str, ...]:
        files, dirs = self._entries()
        if not is_glob(pattern):
            path = normalize(pattern)
            return (path,) if path in files or path in dirs else ()
        # a trailing slash: directories only
        candidates = [d + "/" for d in dirs] if pattern.endswith("/") else [*files, *dirs]
        found = {normalize(p) for p in candidates if matches(pattern, p)}
        return tuple(sorted(p for p in found if p.split("/", 1)[0] not in _PRIVATE))

    def _entries(self) -> tuple[frozenset[str], frozenset[str]]:
        if self._tree is None:
            self._tree = (frozenset(), frozenset())
            if not self.commit.startswith("-"):
                listed = run_git(
                    self.repo, "ls-tree", "-r", "-t", "-z", self.commit, check=False
                ).stdout.split(b"\0")
                if len(listed) <= self.limit:
                    files: set[str] = set()
                    dirs: set[str] = set()
                    for entry in filter(None, listed):
                        meta, _tab, name = entry.partition(b"\t")
                        path = name.decode("utf-8", "surrogateescape")
                        (dirs if meta.split(b" ")[1] == b"tree" else files).add(path)
                    self._tree = (frozenset(files), frozenset(dirs))
        return self._tree
