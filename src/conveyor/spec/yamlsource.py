"""YAML -> plain data plus a map of where every value was written.

PyYAML's C loader composes nodes that carry marks; we build the data ourselves so
that each mapping key and sequence item keeps its line and column, and so that a
duplicate key is an error instead of a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from conveyor.errors import Position, SpecError

Loc = tuple[str | int, ...]

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


def load_documents(text: str, path: str) -> Iterator[tuple[Any, SourceMap]]:
    """Yield ``(data, source_map)`` for every YAML document in ``text``."""
    loader = _Loader(text)
    try:
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
    finally:
        loader.dispose()


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
