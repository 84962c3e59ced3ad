"""Pachyderm's glob patterns, with capture groups, matched in linear time.

The dialect is Pachyderm's (ohmyglob, after gobwas/glob, with ``/`` the separator):
``*`` any characters but ``/``; ``**`` any characters, ``/`` included (``/**`` is every
file and directory at any depth, ``/**.txt`` every ``.txt`` file); ``?`` one character
but ``/``; ``[abc]``, ``[a-z]``, ``[!abc]`` one character of (not of) a class; ``{a,b}``
one of the alternatives; ``(...)`` a capture group (``|`` separates alternatives in it),
numbered by its opening parenthesis; ``\\`` escapes. A pattern is matched against a whole
path that starts with ``/``; a pattern without the leading ``/`` gets one, a trailing
``/`` is dropped (``/`` alone is the root: the whole repository).

ohmyglob compiles to a backtracking regex engine; here the pattern becomes a small
program run as a Pike VM (every thread at once, leftmost-first priorities like a
backtracking engine's, so the captures are the same): time ``len(path) * len(pattern)``
whatever the pattern. The extended operators ``!(...)``, ``@(...)``, ``+(...)``,
``*(...)`` and ``?(...)`` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_PATTERN = 1024
"""The longest glob read, in characters."""


class GlobError(ValueError):
    """A glob that cannot be compiled or can never match; the message says why."""


# instructions: (op, a, b): op "c" char test, "s" split (a before b), "j" jump,
# "v" save capture slot a, "m" match. A char test is ("/", None) any character,
# ("*", None) any but "/", ("=", ch) that character, ("[", (negated, ranges)) a class.
Instr = tuple[str, object, object]


_DFA_STATES = 4096
"""The most sets of program positions a glob remembers (then it starts over)."""


@dataclass(frozen=True)
class Glob:
    pattern: str
    program: tuple[Instr, ...]
    groups: int
    # (set of positions, character) -> next set: the NFA run as a DFA built lazily
    _steps: dict[tuple[frozenset[int], str], frozenset[int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def matches(self, path: str) -> bool:
        """Whether the glob matches ``path``: each character is a dictionary lookup once
        the sets of positions it reaches are known (at most ``len(program)`` work each
        otherwise, so still linear)."""
        steps, program = self._steps, self.program
        state = _positions(program, (0,))
        for ch in path:
            following = steps.get((state, ch))
            if following is None:
                if len(steps) >= _DFA_STATES:
                    steps.clear()
                moved = [
                    pc + 1 for pc in state if program[pc][0] == "c" and _accepts(program[pc][1], ch)
                ]
                following = _positions(program, moved)
                steps[(state, ch)] = following
            if not following:
                return False
            state = following
        return any(program[pc][0] == "m" for pc in state)

    def match(self, path: str) -> tuple[str, ...] | None:
        """The capture groups of ``path`` (``()`` without groups), or None if it does not
        match."""
        if not self.matches(path):
            return None
        if not self.groups:
            return ()
        slots = _run(self.program, 2 * (self.groups + 1), path)
        if slots is None:
            return None
        out = []
        for n in range(1, self.groups + 1):
            start, end = slots[2 * n], slots[2 * n + 1]
            out.append(path[start:end] if start >= 0 and end >= 0 else "")
        return tuple(out)


def clean(pattern: str) -> str:
    """The pattern as Pachyderm matches it: a leading ``/``, no trailing one."""
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    while len(pattern) > 1 and pattern.endswith("/") and not pattern.endswith("\\/"):
        pattern = pattern[:-1]
    return pattern


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> Glob:
    if len(pattern) > MAX_PATTERN:
        raise GlobError(f"the glob is {len(pattern)} characters; at most {MAX_PATTERN} are read")
    text = clean(pattern)
    for segment in text.split("/")[1:]:
        if segment == "" and text != "/":
            raise GlobError("it holds an empty path segment ('//'), which no path has")
        if segment in (".", ".."):
            raise GlobError(f"it holds a {segment!r} segment, which no path in a dataset has")
    parser = _Parser(text)
    body = parser.sequence(top=True)
    program: list[Instr] = [("v", 0, None)]
    _emit(body, program)
    program += [("v", 1, None), ("m", None, None)]
    return Glob(text, tuple(program), parser.groups)


# -- parsing: nodes are ("lit", test) | ("star", deep) | ("alt", [seq...]) |
#    ("group", n, [seq...]); a seq is a list of nodes


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.groups = 0

    def error(self, message: str) -> GlobError:
        return GlobError(f"{message} at character {self.at + 1}")

    def sequence(self, top: bool = False, stops: str = "") -> list[object]:
        nodes: list[object] = []
        text = self.text
        while self.at < len(text):
            ch = text[self.at]
            if ch in stops:
                return nodes
            if ch in ")}" and top:
                raise self.error(f"an unmatched {ch!r}")
            if ch in "!@+*?" and text.startswith("(", self.at + 1):
                raise self.error(
                    f"the extended glob operator '{ch}(' is not supported; "
                    "use a plain '(...)' capture group"
                )
            self.at += 1
            if ch == "*":
                deep = text.startswith("*", self.at)
                self.at += 1 if deep else 0
                nodes.append(("star", deep))
            elif ch == "?":
                nodes.append(("lit", ("*", None)))
            elif ch == "[":
                nodes.append(("lit", ("[", self.char_class())))
            elif ch == "{":
                nodes.append(("alt", self.alternatives(",", "}")))
            elif ch == "(":
                self.groups += 1
                number = self.groups
                nodes.append(("group", number, self.alternatives("|", ")")))
            elif ch == "\\":
                if self.at >= len(text):
                    raise self.error("a '\\' escapes nothing")
                nodes.append(("lit", ("=", text[self.at])))
                self.at += 1
            else:
                nodes.append(("lit", ("=", ch)))
        return nodes

    def alternatives(self, separator: str, close: str) -> list[list[object]]:
        options = [self.sequence(stops=separator + close)]
        while self.at < len(self.text) and self.text[self.at] == separator:
            self.at += 1
            options.append(self.sequence(stops=separator + close))
        if self.at >= len(self.text):
            raise self.error(f"a {'{' if close == '}' else '('!r} is never closed")
        self.at += 1
        return options

    def char_class(self) -> tuple[bool, tuple[tuple[str, str], ...]]:
        text, start = self.text, self.at
        negated = text.startswith("!", self.at) or text.startswith("^", self.at)
        self.at += 1 if negated else 0
        ranges: list[tuple[str, str]] = []
        while self.at < len(text) and text[self.at] != "]":
            low = text[self.at]
            if (
                text.startswith("-", self.at + 1)
                and self.at + 2 < len(text)
                and text[self.at + 2] != "]"
            ):
                high = text[self.at + 2]
                if high < low:
                    raise self.error(f"the range {low}-{high} is empty")
                ranges.append((low, high))
                self.at += 3
            else:
                ranges.append((low, low))
                self.at += 1
        if self.at >= len(text):
            self.at = start
            raise self.error("a '[' is never closed")
        self.at += 1
        if not ranges:
            raise self.error("an empty character class '[]' matches nothing")
        return negated, tuple(ranges)


def _emit(nodes: list[object], program: list[Instr]) -> None:
    for node in nodes:
        assert isinstance(node, tuple)
        kind = node[0]
        if kind == "lit":
            program.append(("c", node[1], None))
        elif kind == "star":
            loop = len(program)
            program.append(("s", loop + 1, None))  # patched: exit
            program.append(("c", ("/", None) if node[1] else ("*", None), None))
            program.append(("j", loop, None))
            program[loop] = ("s", loop + 1, len(program))
        elif kind == "group":
            program.append(("v", 2 * node[1], None))
            _alternatives(node[2], program)
            program.append(("v", 2 * node[1] + 1, None))
        else:
            _alternatives(node[1], program)


def _alternatives(options: list[list[object]], program: list[Instr]) -> None:
    jumps = []
    for index, option in enumerate(options):
        last = index == len(options) - 1
        split = len(program)
        if not last:
            program.append(("s", split + 1, None))  # patched: next option
        _emit(option, program)
        if not last:
            jumps.append(len(program))
            program.append(("j", None, None))  # patched: end
            program[split] = ("s", split + 1, len(program))
    for at in jumps:
        program[at] = ("j", len(program), None)


def _accepts(test: Any, ch: str) -> bool:
    kind: str = test[0]
    arg: Any = test[1]
    if kind == "/":
        return True
    if kind == "*":
        return ch != "/"
    if kind == "=":
        return bool(ch == arg)
    negated, ranges = arg
    if ch == "/":
        return False
    inside = any(low <= ch <= high for low, high in ranges)
    return bool(inside != negated)


def _run(program: tuple[Instr, ...], slots: int, text: str) -> list[int] | None:
    """Pike VM: threads in priority order, each program counter at most once per step."""
    threads = _closure(program, [(0, [-1] * slots)], 0)
    for at, ch in enumerate(text):
        moved = [
            (pc + 1, caps)
            for pc, caps in threads
            if program[pc][0] == "c" and _accepts(program[pc][1], ch)
        ]
        threads = _closure(program, moved, at + 1)
        if not threads:
            return None
    for pc, caps in threads:
        if program[pc][0] == "m":
            return caps
    return None


def _closure(
    program: tuple[Instr, ...], starts: list[tuple[int, list[int]]], at: int
) -> list[tuple[int, list[int]]]:
    """The char tests and matches reached from ``starts`` without reading, by priority."""
    seen: set[int] = set()
    out: list[tuple[int, list[int]]] = []
    for start in starts:
        stack = [start]
        while stack:
            pc, caps = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            op, a, b = program[pc]
            if op == "j":
                stack.append((int(a), caps))  # type: ignore[call-overload]
            elif op == "s":
                # push the lower priority first: the higher one is explored first
                stack.append((int(b), caps))  # type: ignore[call-overload]
                stack.append((int(a), caps))  # type: ignore[call-overload]
            elif op == "v":
                copy = list(caps)
                copy[int(a)] = at  # type: ignore[call-overload]
                stack.append((pc + 1, copy))
            else:
                out.append((pc, caps))
    return out


def _positions(program: tuple[Instr, ...], starts: Iterable[int]) -> frozenset[int]:
    """The char tests and the match reached from ``starts`` without reading."""
    seen: set[int] = set()
    out: set[int] = set()
    stack = list(starts)
    while stack:
        pc = stack.pop()
        if pc in seen:
            continue
        seen.add(pc)
        op, a, b = program[pc]
        if op == "j":
            stack.append(int(a))  # type: ignore[call-overload]
        elif op == "s":
            stack += [int(a), int(b)]  # type: ignore[call-overload]
        elif op == "v":
            stack.append(pc + 1)
        else:
            out.add(pc)
    return frozenset(out)


_REFERENCE = re.compile(r"\$(?:\{(\d+)\}|(\d+))")


def references(template: str) -> list[int]:
    """The capture groups a ``join_on``/``group_by`` template names (``$1``, ``${2}``)."""
    return [int(m.group(1) or m.group(2)) for m in _REFERENCE.finditer(template)]


def expand(template: str, groups: tuple[str, ...]) -> str:
    """``join_on``/``group_by``: the template with ``$N`` replaced by capture group N."""

    def value(m: re.Match[str]) -> str:
        n = int(m.group(1) or m.group(2))
        return groups[n - 1] if 0 < n <= len(groups) else ""

    return _REFERENCE.sub(value, template)
