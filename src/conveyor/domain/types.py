"""Small immutable value types."""

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal, NewType

RunId = NewType("RunId", str)
"""A run's id: 12 lowercase hex characters, random so that short prefixes are unique."""

Policy = Literal["success", "failure", "always"]
"""When a step runs: after its needs succeeded, after one failed, or either way."""

ParamValue = str | int | float | bool
"""A pipeline parameter's value as given: typed (JSON, a past run) or command-line text."""

StepId = NewType("StepId", str)
"""A step's id in a plan: ``job.step``; a matrix job instance reads ``job[k=v].step``."""

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class Digest(str):
    """A BLAKE3 content digest as 64 lowercase hex characters."""

    __slots__ = ()

    def __new__(cls, value: str) -> "Digest":
        if not _DIGEST.match(value):
            raise ValueError(f"not a BLAKE3 hex digest: {value!r}")
        return super().__new__(cls, value)

    @property
    def short(self) -> str:
        return self[:12]


@dataclass(frozen=True)
class Resources:
    """What a step asks of the machine that runs it (executors map these)."""

    cpus: float = 1.0
    memory_mb: int | None = None
    gpus: int = 0
    disk_mb: int | None = None


def split_step_id(step_id: str) -> tuple[str, str]:
    """Split ``job.step`` into its job and step parts (step names contain no dot)."""
    job, _, step = step_id.rpartition(".")
    return job, step


# Equality, hashing and repr by a dataclass's fields, written once for the large classes on
# the run path: ``dataclass`` would generate and compile these three methods for each class
# at every import (a 40-field step plan's cost about 5 ms of each ``conveyor run``).
_COMPARED: dict[type, tuple[str, ...]] = {}
_SHOWN: dict[type, tuple[str, ...]] = {}


def _compared(cls: type) -> tuple[str, ...]:
    if cls not in _COMPARED:
        _COMPARED[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.compare)
    return _COMPARED[cls]


class FieldValues:
    """Base of a ``@dataclass(eq=False, repr=False)``: compares, hashes and prints as the
    generated methods would (the fields with ``compare``, a tuple of them hashed)."""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _compared(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, FieldValues)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        cls = type(self)
        if cls not in _SHOWN:
            _SHOWN[cls] = tuple(f.name for f in dataclasses.fields(self) if f.repr)  # type: ignore[arg-type]
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _SHOWN[cls])
        return f"{cls.__qualname__}({shown})"
