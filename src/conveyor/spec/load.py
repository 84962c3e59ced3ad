"""Find and load a pipeline file into a :class:`PipelineSpec`, with positions in errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conveyor.errors import Position, ProjectError, SpecError
from conveyor.spec.model import PipelineSpec
from conveyor.spec.yamlsource import Loc, SourceMap, describe, load_documents, read_text


def load_pipeline(path: Path, display: str | None = None) -> PipelineSpec:
    """Read, parse and validate the native pipeline file at ``path``."""
    shown = display or str(path)
    return parse_pipeline(read_pipeline(path, shown), shown)


def read_pipeline(path: Path, shown: str) -> str:
    """The text of a pipeline file; a missing or unreadable one is a clear error."""
    try:
        return read_text(path, shown)
    except FileNotFoundError as exc:
        raise ProjectError(f"pipeline file {shown} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the pipeline file: {exc}", Position(shown)) from exc


def parse_pipeline(text: str, display: str) -> PipelineSpec:
    """Parse native pipeline text (one YAML document)."""
    return validate_native(list(load_documents(text, display)), display)


def validate_native(documents: list[tuple[Any, SourceMap]], display: str) -> PipelineSpec:
    """Native documents (there must be exactly one) -> the model."""
    if not documents:
        raise SpecError("the pipeline file is empty; it needs at least `jobs:`", Position(display))
    if len(documents) > 1:
        raise SpecError(
            "conveyor.yml holds one YAML document; remove the extra `---`",
            documents[1][1].position(()),
        )
    data, source = documents[0]
    return validate(data, source, "conveyor")


def validate(data: Any, source: SourceMap, fmt: str) -> PipelineSpec:
    """Validate plain data against the model; the first error becomes a SpecError."""
    if not isinstance(data, dict):
        raise SpecError("the pipeline file must be a mapping with `jobs:`", source.position(()))
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, source) from None
    return spec.with_source(source, fmt)


def _known_keys() -> set[str]:
    from conveyor.spec import model

    keys: set[str] = set()
    for cls in (
        model.PipelineSpec,
        model.JobSpec,
        model.StepSpec,
        model.ParamSpec,
        model.ResourcesSpec,
        model.TriggersSpec,
        model.PushTriggerSpec,
        model.ScheduleSpec,
    ):
        keys.update(f.alias or name for name, f in cls.model_fields.items())
    return keys | {"uses", "with"}  # rewritten before validation (spec/uses.py)


def _first_error(exc: ValidationError, source: SourceMap) -> SpecError:
    # a misspelt key also makes the right one "missing": report the misspelling first
    rank = {"extra_forbidden": 0, "missing": 2}
    errors = sorted(exc.errors(include_url=False), key=lambda e: rank.get(e["type"], 1))
    error = errors[0]
    loc: Loc = tuple(error["loc"])
    # pydantic reports the alias in loc; tagged unions add a type name we can drop
    loc = tuple(part for part in loc if not (isinstance(part, str) and "[" in part))
    where = describe(loc) or "the file"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = describe(loc[:-1]) or "the top level"
        message = f"unknown key {loc[-1]!r} in {parent}"
        close = difflib.get_close_matches(str(loc[-1]), _known_keys() - {str(loc[-1])}, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    elif kind == "missing":
        message = f"missing required key {where!r}"
    elif kind == "string_pattern_mismatch" and loc[-1:] == ("python",):
        message = f"{where}: {error.get('input')!r} is not package.module:function"
    elif kind == "string_pattern_mismatch" and loc[-1:] == ("notebook",):
        message = f"{where}: {error.get('input')!r} is not a notebook file (NAME.ipynb)"
    else:
        message = f"{where}: {error['msg'].removeprefix('Value error, ')}"
        given = error.get("input")
        if kind not in ("value_error",) and isinstance(given, str | int | float | bool):
            message += f" (got {given!r})"
    return SpecError(message, source.position(loc))
