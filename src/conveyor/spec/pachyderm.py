"""Pachyderm pipeline specs (``pipeline.json`` / ``.yaml``), read unchanged.

A file holds one spec or several: a JSON stream (objects one after another) or YAML
documents. Each spec is checked the way protobuf's JSON reader checks a
``CreatePipelineRequest`` (field names in ``snake_case`` or ``camelCase``, each value of
its field's type: the table in ``pachyderm_fields``), then the way Pachyderm validates a
pipeline (``pachyderm_build``), then the file as a whole: two pipelines of one name, or
pipelines that read each other's output in a cycle. The first problem is one
``SpecError`` with file:line:col.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec import jsonsource, yamlsource
from conveyor.spec.pachyderm_build import Report, build
from conveyor.spec.pachyderm_fields import IGNORED, KEYS, MESSAGES, OLD_KEYS, REFUSED, SCALARS
from conveyor.spec.pachyderm_model import CombinedInput, PachydermPipeline, PfsInput, leaves
from conveyor.spec.yamlsource import Loc, SourceMap, describe


@dataclass(frozen=True)
class PachydermFile:
    path: str
    pipelines: tuple[PachydermPipeline, ...]
    warnings: tuple[str, ...] = ()


def load_specs(path: Path, shown: str | None = None) -> PachydermFile:
    """Read the spec file at ``path`` (``shown`` is the name errors give)."""
    display = shown or str(path)
    if path.name.endswith(".jsonnet"):
        raise SpecError(
            "a Jsonnet template, not a spec: render it first (`jsonnet --tla-str ... FILE "
            "> pipeline.json`) and give the JSON",
            Position(display),
        )
    try:
        text = yamlsource.read_text(path, display)
    except FileNotFoundError:
        raise SpecError("no such file", Position(display)) from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", Position(display)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror}", Position(display)) from None
    return parse_specs(text, display, is_json=_is_json(path.name, text))


def _is_json(name: str, text: str) -> bool:
    if name.endswith(".json"):
        return True
    if name.endswith((".yaml", ".yml")):
        return False
    return text.lstrip()[:1] in ("{", "[")


def parse_specs(text: str, display: str, *, is_json: bool) -> PachydermFile:
    loader = jsonsource.load_documents if is_json else yamlsource.load_documents
    pipelines: list[PachydermPipeline] = []
    warnings: list[str] = []
    for data, source in loader(text, display):
        if data is None:
            continue
        if not isinstance(data, dict):
            raise source.error((), "a pipeline spec must be a mapping (an object)")
        typed = _Typed(source, warnings)
        spec = typed.message("CreatePipelineRequest", data, ())
        pipelines.append(build(spec, Report(typed.position, typed.spelled)))
    if not pipelines:
        raise SpecError("the file holds no pipeline spec", Position(display))
    _check_file(pipelines)
    return PachydermFile(display, tuple(pipelines), tuple(warnings))


class _Typed:
    """One spec read as protobuf's JSON reader reads it; keys come out as proto names and
    positions are kept under those names."""

    def __init__(self, source: SourceMap, warnings: list[str]) -> None:
        self.source = source
        self.warnings = warnings
        self.where: dict[Loc, Loc] = {}  # proto-name location -> location in the file

    def position(self, loc: Loc) -> Position:
        probe = tuple(loc)
        while probe and probe not in self.where:
            probe = probe[:-1]
        return self.source.position(self.where.get(probe, ()))

    def spelled(self, loc: Loc) -> str:
        """``loc`` (proto names) as the file spells it, as far as the file has it."""
        probe = tuple(loc)
        while probe and probe not in self.where:
            probe = probe[:-1]
        return describe((*self.where.get(probe, ()), *loc[len(probe) :]))

    def error(self, loc: Loc, message: str) -> SpecError:
        return self.source.error(loc, message)

    def message(self, name: str, value: Any, loc: Loc, out: Loc = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(loc, f"{describe(loc) or 'the spec'} must be an object")
        keys, result = KEYS[name], {}
        seen: dict[str, str] = {}
        for key, item in value.items():
            here = (*loc, key)
            field = keys.get(key)
            if field is None:
                raise self.error(here, self._unknown(name, key, loc))
            if field in seen:
                raise self.error(here, f"{key!r} and {seen[field]!r} name the same field; keep one")
            seen[field] = key
            self.where[(*out, field)] = here
            if item is None:
                continue  # protobuf JSON: null leaves a field unset
            if (name, field) in REFUSED:
                raise self.error(here, f"{describe(here)}: {REFUSED[(name, field)]}")
            checked = self.value(MESSAGES[name][field], item, here, (*out, field))
            if (name, field) in IGNORED:  # checked all the same: Pachyderm would refuse it
                position = self.source.position(here)
                self.warnings.append(f"{position}: {describe(here)}: {IGNORED[(name, field)]}")
                continue
            result[field] = checked
        return result

    def _unknown(self, name: str, key: str, loc: Loc) -> str:
        hint = OLD_KEYS.get(name, {}).get(key)
        if hint:
            return hint
        where = describe(loc) or "the top level of the spec"
        message = f"unknown field {key!r} in {where} (not a Pachyderm 2.x pipeline field)"
        close = difflib.get_close_matches(key, list(KEYS[name]), n=1)
        return f"{message}; did you mean {close[0]!r}?" if close else message

    def value(self, kind: Any, value: Any, loc: Loc, out: Loc) -> Any:
        if isinstance(kind, tuple) and kind[0] == "list":
            if not isinstance(value, list):
                raise self.error(loc, f"{describe(loc)} must be a list")
            items = []
            for index, item in enumerate(value):
                if item is None:
                    raise self.error((*loc, index), f"{describe((*loc, index))} must not be null")
                self.where[(*out, index)] = (*loc, index)
                items.append(self.value(kind[1], item, (*loc, index), (*out, index)))
            return items
        if isinstance(kind, tuple) and kind[0] == "map":
            if not isinstance(value, dict):
                raise self.error(loc, f"{describe(loc)} must be an object of names to values")
            return {k: self.value(kind[1], v, (*loc, k), (*out, k)) for k, v in value.items()}
        if isinstance(kind, tuple):  # enum
            if value not in kind[1]:
                raise self.error(loc, f"{describe(loc)} must be one of {', '.join(kind[1])}")
            return value
        if kind in SCALARS:
            return _scalar(kind, value, lambda m: self.error(loc, f"{describe(loc)} {m}"))
        return self.message(kind, value, loc, out)


_INT_TEXT = re.compile(r"-?\d+")
_DURATION = re.compile(r"(-?\d+(?:\.\d{1,9})?)s")
_RANGES = {"int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1), "int32": (-(2**31), 2**31 - 1)}


def _scalar(kind: str, value: Any, error: Any) -> Any:
    """A scalar as protobuf's JSON reader takes it (numbers may be written as strings)."""
    if kind == "string":
        if not isinstance(value, str):
            raise error("must be a string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise error("must be true or false")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise error("must be a number")
        try:
            return float(value)
        except ValueError:
            raise error(f"must be a number, not {value!r}") from None
    if kind in _RANGES:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and _INT_TEXT.fullmatch(value)
        ):
            number = int(value)
        if number is None:
            raise error("must be a whole number")
        low, high = _RANGES[kind]
        if low == 0 and number < 0:
            raise error("must be 0 or more")
        if not low <= number <= high:
            raise error(f"must be between {low} and {high}")
        return number
    if kind == "duration":
        match = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise error('must be a duration in seconds written as a string, such as "600s"')
        return float(match.group(1))
    # timestamp: RFC 3339
    try:
        if not isinstance(value, str) or "T" not in value:
            raise ValueError
        datetime.fromisoformat(value)
    except ValueError:
        raise error('must be an RFC 3339 time, such as "2024-01-01T00:00:00Z"') from None
    return value


def _check_file(pipelines: list[PachydermPipeline]) -> None:
    """Two pipelines of one name, and cycles between the pipelines of the file."""
    by_name: dict[str, PachydermPipeline] = {}
    for pipeline in pipelines:
        if pipeline.name in by_name:
            raise SpecError(
                f"a second pipeline named {pipeline.name!r} in this file", pipeline.position
            )
        by_name[pipeline.name] = pipeline
    reads = {
        p.name: [
            leaf for leaf in leaves(p.input) if isinstance(leaf, PfsInput) and leaf.repo in by_name
        ]
        for p in pipelines
    }
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for leaf in reads[name]:
            if state.get(leaf.repo) == 1:
                path = [*trail, name]
                cycle = " -> ".join([*path[path.index(leaf.repo) :], leaf.repo])
                raise SpecError(
                    f"the pipelines read each other's output in a cycle ({cycle}); "
                    "a pipeline's input cannot depend on its own output",
                    leaf.position,
                )
            if state.get(leaf.repo) is None:
                visit(leaf.repo, [*trail, name])
        state[name] = 2

    for pipeline in pipelines:
        if pipeline.name not in state:
            visit(pipeline.name, [])


def input_tree(node: PachydermPipeline | CombinedInput | Any) -> Any:
    """An input tree as plain data (``conveyor pipeline check --json``)."""
    from dataclasses import asdict

    if isinstance(node, PachydermPipeline):
        return input_tree(node.input)
    if isinstance(node, CombinedInput):
        return {node.kind: [input_tree(child) for child in node.inputs]}
    kind = "pfs" if isinstance(node, PfsInput) else "cron"
    data = {k: v for k, v in asdict(node).items() if k != "position" and v not in (None, False)}
    return {kind: data}
