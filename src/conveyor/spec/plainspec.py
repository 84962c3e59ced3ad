"""A native ``conveyor.yml`` read into plain objects, without pydantic, for the compiler
of a run whose plan is not cached.

Importing and building the pydantic model costs more than compiling a file of hundreds
of steps, so a run reads the file here first. Only a file this reader is sure of is
read: every key one it knows, every value of exactly the type the model keeps as it is.
Anything else (an unknown key, a value the model would convert or refuse, ``uses:``, a
file of several documents, any other format) gives None, and the caller loads the file
with :mod:`conveyor.spec.formats`: every error message and every conversion stays the
model's. The objects carry every field of the model class they stand for, with its
default (``tests/unit/test_plainspec.py`` holds them to the model and to its plans).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from conveyor.domain.durations import parse_duration
from conveyor.spec.yamlsource import SourceMap, load_documents, read_text

if TYPE_CHECKING:
    from conveyor.spec.model import PipelineSpec

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # model.NAME_PATTERN, max_length=100
_SCALARS = (str, int, float, bool)
_PARAM_TYPES = ("int", "float", "str", "bool")
_FIELD = {"if": "if_"}  # keys whose field name is not the key with `_` for `-`


class Unsure(Exception):
    """A value this reader does not take as the model would: the model reads the file."""


class Plain:
    """A model object's fields as attributes (defaults first, then the file's values)."""

    def __init__(self, defaults: dict[str, Any], given: dict[str, Any]) -> None:
        self.__dict__.update(defaults)
        self.__dict__.update(given)


class PlainJob(Plain):
    htcondor: dict[str, Any]
    spark: object

    def executor_options(self) -> tuple[tuple[str, str], ...]:
        """As :meth:`JobSpec.executor_options` (``htcondor``/``spark`` are never read here)."""
        if self.htcondor or self.spark is not None:  # pragma: no cover - refused keys
            raise Unsure("executor tables")
        return ()


def step_defaults() -> dict[str, Any]:
    """``StepSpec``'s fields and defaults."""
    return {
        **dict.fromkeys(("id", "name", "image", "run", "pull", "python", "notebook")),
        **dict.fromkeys(("datums", "result", "needs", "ci", "timeout", "queue_timeout")),
        **dict.fromkeys(("resources", "action")),
        "parameters": {},
        "env": {},
        "secrets": {},
        "status_env": [],
        "continue_on_error": False,
        "if_": "success()",
        "when": {},
        "volumes": [],
        "privileged": False,
        "retries": 0,
        "inputs": [],
        "outputs": [],
        "metrics": [],
        "cache": True,
    }


def job_defaults() -> dict[str, Any]:
    """``JobSpec``'s fields and defaults (``steps`` is required)."""
    return {
        **dict.fromkeys(("name", "matrix", "runs_on", "resources", "spark", "concurrency")),
        "needs": [],
        "env": {},
        "htcondor": {},
        "when": {},
        "services": [],
    }


def pipeline_defaults() -> dict[str, Any]:
    """``PipelineSpec``'s fields and defaults but ``on`` (triggers: a server's, never
    read by the compiler) and ``jobs`` (required)."""
    return {"name": "pipeline", "params": {}, "sweep": {}, "env": {}, "datasets": {}}


def param_defaults() -> dict[str, Any]:
    """``ParamSpec``'s fields and defaults."""
    return {"type": "str", "default": None, "description": None}


class Parsed(NamedTuple):
    """A pipeline file's text and YAML documents, read once for both readers."""

    text: str
    documents: list[tuple[Any, SourceMap]]


def parse_file(path: Path, display: str) -> Parsed | None:
    """The file's text and documents; None when it cannot be read or parsed (the
    model's loader then reads it again, and reports the error as it always has)."""
    try:
        text = read_text(path, display)
        return Parsed(text, list(load_documents(text, display)))
    except Exception:  # any failure is the model loader's to report
        return None


def plain_spec(parsed: Parsed) -> PipelineSpec | None:
    """The parsed file as plain objects, or None when this reader is not sure of it."""
    documents = parsed.documents
    if len(documents) != 1:
        return None
    data, source = documents[0]
    try:
        spec = pipeline(data, source)
    except Unsure:
        return None
    # duck-typed: the compiler reads attributes only (the unit tests compare the plans)
    return cast("PipelineSpec", spec)


def pipeline(data: object, source: SourceMap) -> Plain:
    """Plain objects for the pipeline's data, or :class:`Unsure`."""
    given = _fields(data, PIPELINE_KEYS)
    if "jobs" not in given:
        raise Unsure("jobs")
    spec = Plain(pipeline_defaults(), given)
    spec.__dict__.update(source=source, format="conveyor", read_files=(), warnings=())
    return spec


def _fields(data: object, readers: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """The fields of a mapping, each by its reader (keyed by the written key, stored
    under the field's name)."""
    if type(data) is not dict:
        raise Unsure("not a mapping")
    out = {}
    for key, value in data.items():
        reader = readers.get(key)
        if reader is None:
            raise Unsure(key)
        out[_FIELD.get(key) or key.replace("-", "_")] = reader(value)
    return out


def _str(value: object) -> str:
    if type(value) is not str:
        raise Unsure("not text")
    return value


def _text(value: object) -> str:
    """Text of at least one character (``min_length=1``)."""
    if not _str(value):
        raise Unsure("empty")
    return cast(str, value)


def _optional(reader: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else reader(value)


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise Unsure("not a boolean")
    return value


def _name(value: object) -> str:
    if type(value) is not str or len(value) > 100 or not _NAME.fullmatch(value):
        raise Unsure("not a name")
    return value


def _strs(value: object) -> list[str]:
    if type(value) is not list:
        raise Unsure("not a list")
    return [_str(item) for item in value]


def _names(value: object) -> list[str]:
    if type(value) is not list:
        raise Unsure("not a list")
    return [_name(item) for item in value]


def _scalars(value: object) -> dict[str, Any]:
    if type(value) is not dict or any(type(v) not in _SCALARS for v in value.values()):
        raise Unsure("not a mapping of scalars")
    return dict(value)


def _duration(value: object) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float, str):
        raise Unsure("not a duration")
    try:
        return parse_duration(value)
    except ValueError:
        raise Unsure("not a duration") from None


def _retries(value: object) -> int:
    if type(value) is not int or not 0 <= value <= 100:
        raise Unsure("retries")
    return value


def _param(value: object) -> Plain:
    if type(value) is not dict:  # the shorthand ``lr: 0.1``
        if value is not None and type(value) not in _SCALARS:
            raise Unsure("param")
        kind = {bool: "bool", int: "int", float: "float"}.get(type(value), "str")
        value = {"type": kind} if value is None else {"type": kind, "default": value}
    given = _fields(value, {"type": _str, "default": _default, "description": _optional(_str)})
    if given.get("type", "str") not in _PARAM_TYPES:
        raise Unsure("param type")
    return Plain(param_defaults(), given)


def _default(value: object) -> object:
    if value is not None and type(value) not in _SCALARS:
        raise Unsure("param default")
    return value


def _params(value: object) -> dict[str, Plain]:
    if type(value) is not dict:
        raise Unsure("params")
    return {_name(k): _param(v) for k, v in value.items()}


def _matrix(value: object) -> dict[str, list[Any]] | None:
    if value is None:
        return None
    if type(value) is not dict or any(type(v) is not list for v in value.values()):
        raise Unsure("matrix")
    return {k: list(v) for k, v in value.items()}


def _concurrency(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise Unsure("concurrency")
    return value


STEP_KEYS: dict[str, Callable[[Any], Any]] = {
    "id": _optional(_name),
    "name": _optional(_str),
    "run": _text,
    "inputs": _strs,
    "outputs": _strs,
    "metrics": _strs,
    "env": _scalars,
    "needs": _optional(_names),
    "cache": _bool,
    "continue-on-error": _bool,
    "if": _str,
    "retries": _retries,
    "timeout": _duration,
    "queue-timeout": _duration,
}


def _step(value: object) -> Plain:
    given = _fields(value, STEP_KEYS)
    if given.get("run") is None:  # a step without `run:` is the model's to judge
        raise Unsure("no run")
    return Plain(step_defaults(), given)


def _steps(value: object) -> list[Plain]:
    if type(value) is not list or not value:
        raise Unsure("steps")
    return [_step(item) for item in value]


JOB_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": _optional(_str),
    "needs": lambda v: [_name(v)] if type(v) is str else _names(v),
    "env": _scalars,
    "matrix": _matrix,
    "runs-on": _optional(_str),
    "concurrency": _concurrency,
    "steps": _steps,
}


def _job(value: object) -> PlainJob:
    given = _fields(value, JOB_KEYS)
    if "steps" not in given:
        raise Unsure("steps")
    return PlainJob(job_defaults(), given)


def _jobs(value: object) -> dict[str, PlainJob]:
    if type(value) is not dict or not value:
        raise Unsure("jobs")
    return {_name(k): _job(v) for k, v in value.items()}


PIPELINE_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": _str,
    "env": _scalars,
    "params": _params,
    "jobs": _jobs,
}
