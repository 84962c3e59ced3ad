"""The value kinds of a Python step's inputs and outputs, read from type hints.

A kind says how a value travels between steps: as a typed file in the workspace (and
so through the content-addressed store), never pickled. Stdlib only; pandas is
recognised by name and never imported here.

========== ============================================== ===========================
kind       annotations                                    file
========== ============================================== ===========================
str        ``str``                                        ``return.json``
int        ``int``                                        ``return.json``
float      ``float``                                      ``return.json``
bool       ``bool``                                       ``return.json``
json       ``dict``/``list`` (of the above, nested)       ``return.json``
path       ``pathlib.Path`` (a file or a directory)       ``return`` (copied there)
dataframe  ``pandas.DataFrame`` (needs pyarrow)           ``return.parquet``
none       ``None`` (a step that returns nothing)         (no file)
========== ============================================== ===========================
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}
FILES = {"path": "return", "dataframe": "return.parquet", "none": ""}
"""The output file name of each kind that is not JSON (``return.json``)."""
_DATAFRAME = ("pandas.core.frame", "DataFrame")


class KindError(TypeError):
    """An annotation that names no kind a value can travel as (the caller adds where)."""


@dataclass(frozen=True)
class Kind:
    """How one value is typed and stored; ``shape`` tells JSON values apart
    (``dict``/``list``) so that a list is not given where a mapping is expected."""

    name: str
    shape: str = ""

    @property
    def file(self) -> str:
        """The name of the file the value is written to (empty: none)."""
        return FILES.get(self.name, "return.json")

    def __str__(self) -> str:
        return self.shape or self.name

    def accepts(self, given: Kind) -> bool:
        """Whether a value of kind ``given`` may be passed where this kind is expected."""
        if given == self:
            return True
        if self.name == "float" and given.name == "int":
            return True
        return self.name == "json" and not self.shape and given.name in ("json", *SCALARS.values())


def kind_of(annotation: Any, result: bool = False) -> Kind:
    """The kind of a resolved annotation; ``None`` only as a ``result``."""
    if annotation is None or annotation is type(None):
        if result:
            return Kind("none")
        raise KindError("None is not a value a step can take")
    if annotation in SCALARS:
        return Kind(SCALARS[annotation])
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return Kind("path")
    if (getattr(annotation, "__module__", ""), getattr(annotation, "__name__", "")) == _DATAFRAME:
        return Kind("dataframe")
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, list):
        _check_json(annotation)
        return Kind("json", origin.__name__)
    raise KindError(f"{_name(annotation)} cannot be stored as a typed file ({supported()})")


def _check_json(annotation: Any) -> None:
    """A ``dict``/``list`` annotation whose members are JSON too."""
    if annotation in SCALARS or annotation in (dict, list) or annotation is typing.Any:
        return
    origin = typing.get_origin(annotation)
    if origin is dict:
        key, value = typing.get_args(annotation)
        if key is not str:
            raise KindError(f"{_name(annotation)} has keys that are not str; JSON keys are text")
        _check_json(value)
        return
    if origin in (list, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            if argument is not type(None):
                _check_json(argument)
        return
    raise KindError(f"{_name(annotation)} is not JSON-able ({supported()})")


def value_kind(value: object) -> Kind:
    """The kind of a literal value given to a step in the pipeline function."""
    if isinstance(value, bool):
        return Kind("bool")
    for python, name in SCALARS.items():
        if isinstance(value, python):
            return Kind(name)
    if isinstance(value, PurePath):
        return Kind("path")
    if isinstance(value, dict | list):
        return Kind("json", type(value).__name__)
    raise KindError(f"a {type(value).__name__} value cannot be passed to a step ({supported()})")


def supported() -> str:
    return "use str, int, float, bool, dict/list of those, pathlib.Path or pandas.DataFrame"


def _name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")
