"""Small immutable value types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NewType

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

    def __new__(cls, value: str) -> Digest:
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
