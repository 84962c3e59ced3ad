"""YAML -> plain data plus a map of where every value was written.

PyYAML's C loader composes nodes that carry marks; we build the data ourselves so
that each mapping key and sequence item keeps its line and column, and so that a
duplicate key is an error instead of a silent overwrite.

Every YAML Conveyor reads comes through here, so the limits live here too: a document
is at most :data:`MAX_DOCUMENT_BYTES`, at most :data:`MAX_VALUES` values once its
aliases are expanded (a 1 KB file of nested anchors would otherwise expand to billions)
and at most :data:`MAX_DEPTH` levels deep. They are checked on the composed nodes, in
time linear in the text, before anything is built from them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conveyor.errors import Position, SpecError

Loc = tuple[str | int, ...]

MAX_DOCUMENT_BYTES = 1024 * 1024
"""The largest YAML text (pipeline, action manifest) Conveyor reads."""
MAX_VALUES = 100_000
"""The most values (mappings, sequences, scalars, keys) of a document, aliases expanded."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and sequences, aliases expanded."""

try:  # the C loader is ~10x faster; fall back when libyaml is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the wheel
    _Loader = yaml.SafeLoader


@dataclass
class SourceMap:
    """Positions of values in one file, keyed by their path from the document root."""

    path: str
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def position(self, loc: Loc) -> Position:
        """The position of ``loc``, or of its nearest ancestor that has one."""
        probe = tuple(loc)
        while probe:
            mark = self.marks.get(probe)
            if mark is not None:
                return Position(self.path, mark[0], mark[1])
            probe = probe[:-1]
        mark = self.marks.get(())
        if mark is not None:
            return Position(self.path, mark[0], mark[1])
        return Position(self.path)

    def error(self, loc: Loc, message: str) -> SpecError:
        return SpecError(message, self.position(loc))


def describe(loc: Loc) -> str:
    """``("jobs", "a", "steps", 0)`` -> ``jobs.a.steps[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_size(size: int, path: str) -> None:
    """Refuse a YAML file of ``size`` bytes over :data:`MAX_DOCUMENT_BYTES`."""
    if size > MAX_DOCUMENT_BYTES:
        raise SpecError(
            f"the file is {size} bytes; Conveyor reads YAML files of at most "
            f"{MAX_DOCUMENT_BYTES} bytes",
            Position(path),
        )


def read_text(path: Path, shown: str) -> str:
    """The text of the YAML file at ``path``, its size checked before it is read (OSError
    and UnicodeDecodeError are the caller's to report).

    The file opened is checked, not the name: a named pipe (opened without blocking) or a
    device such as /dev/zero (size 0, endless) is refused, and at most one byte over the
    limit is read whatever stat said."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError("not a regular file; Conveyor reads YAML from files", Position(shown))
        check_size(info.st_size, shown)
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    check_size(len(data), shown)
    # universal newlines, as a file opened in text mode gives them
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def load_documents(text: str, path: str) -> Iterator[tuple[Any, SourceMap]]:
    """Yield ``(data, source_map)`` for every YAML document in ``text``."""
    if len(text) > MAX_DOCUMENT_BYTES // 4:
        check_size(len(text.encode()), path)
    built = _built(text, path) if len(text) <= _COMPOSE_FIRST else None
    if built is not None:
        yield from built
        return
    yield from _checked_documents(text, path)


_COMPOSE_FIRST = 2 * MAX_VALUES
"""Texts up to this many characters are composed before their limits are checked (one
parse, not two): they cannot hold many more than :data:`MAX_VALUES` nodes to compose."""


def _built(text: str, path: str) -> list[tuple[Any, SourceMap]] | None:
    """Every document of ``text``, composed then checked against the limits, then built;
    None on any doubt (over a limit, a YAML error), and :func:`_checked_documents`
    (limits checked on the events first) gives the error and its position exactly as it
    always has. A duplicate key and the like are the same error either way."""
    loader = _Loader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                if not _within_limits(node):
                    return None
                nodes.append(node)
        documents = []
        for node in nodes:
            source = SourceMap(path)
            documents.append((_build(loader, node, (), source), source))
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return documents


def _within_limits(root: yaml.Node) -> bool:
    """Whether a composed document is within :data:`MAX_VALUES` and :data:`MAX_DEPTH`
    counted as :func:`_check_limits` counts them: an alias is its anchor's node again, so
    it adds that node's values and height. Each node is measured once (linear in the text);
    a node inside itself (a recursive alias) is not within them."""
    measured: dict[int, tuple[int, int]] = {}  # id -> (values, levels)
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int] | None:
        key = id(node)
        known = measured.get(key)
        if known is not None:
            return known if depth + known[1] <= MAX_DEPTH else None
        if key in open_nodes or depth >= MAX_DEPTH + 1:
            return None
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        open_nodes.add(key)
        values, levels = 1, 0
        for child in children:
            sizes = measure(child, depth + 1)
            if sizes is None:
                return None
            values += sizes[0]
            levels = max(levels, sizes[1])
            if values > MAX_VALUES:
                return None
        open_nodes.discard(key)
        measured[key] = (values, levels + 1)
        return measured[key] if depth + levels + 1 <= MAX_DEPTH else None

    return measure(root, 0) is not None


def _checked_documents(text: str, path: str) -> Iterator[tuple[Any, SourceMap]]:
    """The documents of ``text``, its limits checked on the parser's events first."""
    loader = _Loader(text)
    try:
        _check_limits(text, path)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            source = SourceMap(path)
            data = _build(loader, node, (), source)
            yield data, source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(path, mark.line + 1, mark.column + 1) if mark else Position(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", where) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Position(path)) from exc
    except RecursionError:  # the pure-Python composer, without libyaml's nesting limit
        raise SpecError(f"nested deeper than {MAX_DEPTH} levels", Position(path)) from None
    finally:
        loader.dispose()


def _check_limits(text: str, path: str) -> None:
    """Refuse a document over :data:`MAX_VALUES` or :data:`MAX_DEPTH` with its aliases
    expanded, or with an alias inside the collection it names.

    One pass over the parser's events, before any node is composed: an alias adds the
    size its anchor had when it was closed, so the pass stays linear in the text and
    stops at the event (an alias, often) where a limit is passed."""
    loader = _Loader(text)
    total = 0
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) once expanded
    stack: list[list[Any]] = []  # open collections: [anchor, total at start, height]

    def error(message: str, event: yaml.Event) -> SpecError:
        mark = event.start_mark
        if mark is None:  # pragma: no cover - the parsers mark every event
            return SpecError(message, Position(path))
        return SpecError(message, Position(path, mark.line + 1, mark.column + 1))

    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                total = 0
                sizes.clear()
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, start, height = stack.pop()
                if anchor is not None:
                    sizes[anchor] = (total - start, height)
                if stack:
                    stack[-1][2] = max(stack[-1][2], height + 1)
            elif isinstance(event, yaml.NodeEvent):
                values, height = 1, 0
                if isinstance(event, yaml.AliasEvent):
                    if any(frame[0] == event.anchor for frame in stack):
                        raise error(
                            "an alias refers to a collection that contains it (a recursive value)",
                            event,
                        )
                    values, height = sizes.get(str(event.anchor), (1, 0))
                total += values
                if total > MAX_VALUES:
                    raise error(
                        f"more than {MAX_VALUES} values once aliases are expanded; "
                        "is an alias repeating a collection that repeats others?",
                        event,
                    )
                if len(stack) + 1 + height > MAX_DEPTH:
                    raise error(f"nested deeper than {MAX_DEPTH} levels", event)
                if isinstance(event, yaml.CollectionStartEvent):
                    stack.append([event.anchor, total - 1, 0])
                else:
                    if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
                        sizes[event.anchor] = (1, 0)
                    if stack:
                        stack[-1][2] = max(stack[-1][2], height + 1)
    finally:
        loader.dispose()


def _build(loader: Any, node: yaml.Node, loc: Loc, source: SourceMap, mark: Any = None) -> Any:
    # a mapping entry is reported where its key was written, not its value
    mark = mark or node.start_mark
    source.marks[loc] = (mark.line + 1, mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        # `<<: *base` merge keys: the merged pairs come first, and the keys written here
        # override them (YAML's merge); a key written twice here is still an error
        written = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)
        merged = len(node.value) - written
        result: dict[Any, Any] = {}
        seen: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            # keys are names: taken as written (YAML 1.1 would turn `on` into True)
            if isinstance(key_node, yaml.ScalarNode):
                key: Any = key_node.value
            else:
                key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise SpecError(
                    "mapping keys must be plain scalars",
                    Position(source.path, key_node.start_mark.line + 1),
                )
            key = str(key) if not isinstance(key, str) else key
            if key in seen:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise SpecError(f"duplicate key {key!r}", Position(source.path, line, column))
            if index >= merged:
                seen.add(key)
            result[key] = _build(loader, value_node, (*loc, key), source, key_node.start_mark)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), source) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # an int of more digits than Python converts, a bad date
        raise SpecError(
            f"a value YAML cannot read: {str(exc)[:120]}",
            Position(source.path, mark.line + 1, mark.column + 1),
        ) from None
