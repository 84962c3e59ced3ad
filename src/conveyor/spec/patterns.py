"""The one glob dialect of paths, and GitHub's filter patterns for branches and tags.

Paths (``inputs``, ``datums``; the plan's ordering and the workspace's hashing alike)
follow wcmatch's glob with GLOBSTAR: ``*``, ``?`` and ``[...]`` never cross ``/``;
``**`` as a whole segment matches zero or more directories; a name starting with ``.``
is matched only by a segment that starts with ``.`` (``*`` and ``**`` skip dot files,
as ``glob.glob`` did); ``\\`` escapes; no braces, no ``!`` negation, case-sensitive.
wcmatch is imported when a pattern is a glob, so plain paths do not pay for it.

Branch and tag filters (``on.push``) follow GitHub Actions' filter patterns instead:
see :func:`ref_matches`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wcmatch.glob import WcMatcher

GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return not GLOB_CHARS.isdisjoint(pattern)  # in C: asked per path of every step


def _flags() -> int:
    from wcmatch import glob as wglob

    return wglob.GLOBSTAR | wglob.CASE


@lru_cache(maxsize=1024)
def _matcher(pattern: str) -> WcMatcher[str]:
    from wcmatch import glob as wglob

    return wglob.compile(pattern, flags=_flags())


def glob_paths(pattern: str, root: Path | str) -> list[str]:
    """The paths ``pattern`` names below ``root``, sorted, as the pattern spells them
    (relative to ``root``; a directory named by a trailing ``/`` keeps it)."""
    from wcmatch import glob as wglob

    return sorted(wglob.glob(pattern, flags=_flags(), root_dir=os.fspath(root)))


def matches(pattern: str, path: str) -> bool:
    """Whether the glob ``pattern`` names ``path`` itself."""
    return bool(_matcher(pattern).match(path)) if is_glob(pattern) else pattern == path


def covers(pattern: str, path: str) -> bool:
    """Whether reading ``pattern`` reads ``path``: it names the path, or a directory above
    it (a directory named is read whole, dot files included)."""
    if matches(pattern, path):
        return True
    parent, previous = posixpath.dirname(path), path
    while parent and parent != previous:  # an absolute path ends at "/", not ""
        if matches(pattern, parent) or matches(pattern, parent + "/"):
            return True
        parent, previous = posixpath.dirname(parent), parent
    return False


def may_hold(pattern: str, directory: str) -> bool:
    """Whether the directory ``directory`` may hold something ``pattern`` names, or lies
    inside a directory it names: the pattern's segments agree with the directory's as far
    as both go."""
    parts = [] if directory == "." else directory.split("/")
    return _agree(tuple(pattern.split("/")), tuple(parts))


@lru_cache(maxsize=4096)
def _agree(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern or not parts:
        return True
    head = pattern[0]
    if head == "**":  # zero directories, or one more (never a dot directory)
        return _agree(pattern[1:], parts) or (
            not parts[0].startswith(".") and _agree(pattern, parts[1:])
        )
    return _segment(head, parts[0]) and _agree(pattern[1:], parts[1:])


def _segment(pattern: str, name: str) -> bool:
    if not is_glob(pattern):
        return pattern == name
    from wcmatch import fnmatch as wfnmatch

    return wfnmatch.fnmatch(name, pattern, flags=wfnmatch.CASE)


def fixed_dir(pattern: str) -> str:
    """The leading segments of a glob without glob characters (``"."`` when none)."""
    parts = []
    for part in pattern.split("/"):
        if is_glob(part):
            break
        parts.append(part)
    return "/".join(parts) or "."


# -- branches and tags -------------------------------------------------------------------


def ref_matches(patterns: Iterable[str], name: str) -> bool:
    """Whether a branch or tag ``name`` passes GitHub Actions' filter ``patterns``.

    ``*`` matches any characters but ``/``; ``**`` any characters; ``?`` makes the
    character (or ``[...]``) before it optional; ``+`` repeats it one or more times;
    ``[...]`` is one of the characters or ``a-z`` ranges listed; ``\\`` escapes. Patterns
    apply in order: one with a leading ``!`` takes away the names it matches, a later
    positive one adds them back."""
    wanted = False
    for pattern in patterns:
        negative = pattern.startswith("!")
        if _run(_ref_tokens(pattern[1:] if negative else pattern), name):
            wanted = not negative
    return wanted


# A token is (what one character must be, how often): ranges of code points, or
# ``None`` for any character but "/", ``()`` for any character at all.
_Ranges = tuple[tuple[str, str], ...] | None
_ONE, _OPTIONAL, _ANY_NUMBER = 0, 1, 2
_NOT_SLASH: _Ranges = None
_ANYTHING: _Ranges = ()


@lru_cache(maxsize=256)
def _ref_tokens(pattern: str) -> tuple[tuple[_Ranges, int], ...]:
    tokens: list[tuple[_Ranges, int]] = []
    repeatable = False  # whether `?` or `+` has a character or class to apply to
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            double = pattern.startswith("**", i)
            tokens.append((_ANYTHING if double else _NOT_SLASH, _ANY_NUMBER))
            i, repeatable = i + (2 if double else 1), False
            continue
        if ch in "?+" and repeatable:
            ranges = tokens[-1][0]
            tokens[-1] = (ranges, _OPTIONAL) if ch == "?" else (ranges, _ONE)
            if ch == "+":
                tokens.append((ranges, _ANY_NUMBER))
            i, repeatable = i + 1, False
            continue
        if ch == "[" and (end := pattern.find("]", i + 2)) != -1:
            ranges, i = _ref_class(pattern[i + 1 : end]), end + 1
        elif ch == "\\" and i + 1 < len(pattern):
            ranges, i = ((pattern[i + 1], pattern[i + 1]),), i + 2
        else:
            ranges, i = ((ch, ch),), i + 1
        tokens.append((ranges, _ONE))
        repeatable = True
    return tuple(tokens)


def _ref_class(body: str) -> tuple[tuple[str, str], ...]:
    """``[...]``: the characters listed, ``a-z`` style ranges kept."""
    out, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out.append((body[i], body[i + 2]))
            i += 3
        else:
            out.append((body[i], body[i]))
            i += 1
    return tuple(out)


def _run(tokens: tuple[tuple[_Ranges, int], ...], name: str) -> bool:
    """Match by following every position in the pattern at once: time linear in the
    name times the pattern, whatever the pattern (no backtracking to exploit)."""
    states = _skip(tokens, {0})
    for ch in name:
        following = set()
        for at in states:
            if at < len(tokens) and _accepts(tokens[at][0], ch):
                following.add(at if tokens[at][1] == _ANY_NUMBER else at + 1)
        states = _skip(tokens, following)
        if not states:
            return False
    return len(tokens) in states


def _skip(tokens: tuple[tuple[_Ranges, int], ...], states: set[int]) -> set[int]:
    """``states`` plus the positions reached by matching optional tokens zero times."""
    out, stack = set(states), list(states)
    while stack:
        at = stack.pop()
        if at < len(tokens) and tokens[at][1] != _ONE and at + 1 not in out:
            out.add(at + 1)
            stack.append(at + 1)
    return out


def _accepts(ranges: _Ranges, ch: str) -> bool:
    if ranges is None:
        return ch != "/"
    return not ranges or any(lo <= ch <= hi for lo, hi in ranges)


# -- Pachyderm's globs -------------------------------------------------------------------


def pfs_matches(pattern: str, path: str) -> bool:
    """Whether a Pachyderm glob (``/*``, ``/images/*.png``, ``/**``) names ``path``, a
    file or directory of a dataset commit spelled from its root (``/a/b``).

    The dialect of :func:`matches` (wcmatch with GLOBSTAR) with two Pachyderm habits: a
    leading ``/`` is optional, ``*`` matches names starting with ``.``, and braces
    (``{a,b}``) list alternatives. Unlike Pachyderm's ``ohmyglob``, ``**`` is a whole
    segment (``/a**`` is ``/a*``) and its extended ``?(...)`` groups are not read."""
    from wcmatch import glob as wglob

    flags = wglob.GLOBSTAR | wglob.CASE | wglob.DOTGLOB | wglob.BRACE
    return bool(wglob.globmatch(path.lstrip("/"), pattern.lstrip("/"), flags=flags))
