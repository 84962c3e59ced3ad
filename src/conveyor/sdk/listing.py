"""The project's files as the plan compiler sees them (what ``datums`` globs match)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.plan.graph import normalize
from conveyor.spec.patterns import glob_paths, is_glob

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
