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
    and UnicodeDecodeError are the caller's to report)."""
    check_size(path.stat().st_size, shown)
    return path.read_text(encoding="utf-8")


def load_documents(text: str, path: str) -> Iterator[tuple[Any, SourceMap]]:
    """Yield ``(data, source_map)`` for every YAML document in ``text``."""
    if len(text) > MAX_DOCUMENT_BYTES // 4:
        check_size(len(text.encode()), path)
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_limits(node, path)
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


def _check_limits(root: yaml.Node, path: str) -> None:
    """Refuse a document over :data:`MAX_VALUES` or :data:`MAX_DEPTH` with its aliases
    expanded, or with an alias inside the collection it names.

    An alias is the same node object as its anchor, so each node's expanded size and
    height are worked out once and added up at every further use: linear in the text."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height) once expanded
    open_nodes: set[int] = set()
    total = 0

    def where(node: yaml.Node) -> Position:
        return Position(path, node.start_mark.line + 1, node.start_mark.column + 1)

    def too_many(node: yaml.Node) -> SpecError:
        return SpecError(
            f"more than {MAX_VALUES} values once aliases are expanded; "
            "is an alias repeating a collection that repeats others?",
            where(node),
        )

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        nonlocal total
        if depth > MAX_DEPTH:
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", where(node))
        total += 1
        if total > MAX_VALUES:
            raise too_many(node)
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        open_nodes.add(id(node))
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        count, height = 1, 0
        for child in children:
            known = sizes.get(id(child))
            if known is not None:  # an alias of a node already measured
                total += known[0]
                if total > MAX_VALUES:
                    raise too_many(node)
                if depth + 1 + known[1] > MAX_DEPTH:
                    raise SpecError(f"nested deeper than {MAX_DEPTH} levels", where(node))
            elif id(child) in open_nodes:
                raise SpecError(
                    "an alias refers to a collection that contains it (a recursive value)",
                    where(child),
                )
            else:
                known = visit(child, depth + 1)
            count += known[0]
            height = max(height, known[1] + 1)
        open_nodes.discard(id(node))
        sizes[id(node)] = (count, height)
        return count, height

    visit(root, 1)


def _build(loader: Any, node: yaml.Node, loc: Loc, source: SourceMap, mark: Any = None) -> Any:
    # a mapping entry is reported where its key was written, not its value
    mark = mark or node.start_mark
    source.marks[loc] = (mark.line + 1, mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
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
            if key in result:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise SpecError(f"duplicate key {key!r}", Position(source.path, line, column))
            result[key] = _build(loader, value_node, (*loc, key), source, key_node.start_mark)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
