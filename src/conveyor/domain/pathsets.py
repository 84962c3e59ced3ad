"""Sets of relative, ``/``-separated paths (a datum's files, a step's laid-out inputs)."""

from __future__ import annotations

from collections.abc import Iterable


def ancestors(paths: Iterable[str]) -> set[str]:
    """The directories above ``paths`` (``"a/b/c"`` gives ``"a"`` and ``"a/b"``), each
    walked once however many paths share it."""
    found: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found.add(parent)
            parent = parent.rpartition("/")[0]
    return found
