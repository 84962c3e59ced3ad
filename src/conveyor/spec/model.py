"""The one internal pipeline model every format loads into (what the user declared).

Field names follow the native ``conveyor.yml``; foreign formats map onto them. Unknown
keys are errors everywhere (``extra="forbid"``) so that a typo never passes silently.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from conveyor.spec.yamlsource import SourceMap

Scalar = str | int | float | bool
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1.5h"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use e.g. 90, '90s', '5m', '2h')")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


ParamType = Literal["int", "float", "str", "bool"]


class ParamSpec(_Strict):
    """A typed pipeline parameter, set with ``--param name=value``."""

    type: ParamType = "str"
    default: Scalar | None = None
    description: str | None = None


class ResourcesSpec(_Strict):
    """What a step asks of the machine (``memory``/``disk`` in MB or with a unit)."""

    cpus: float = Field(default=1.0, gt=0)
    memory: int | str | None = None
    gpus: int = Field(default=0, ge=0)
    disk: int | str | None = None


class StepSpec(_Strict):
    """One step of a job: a shell command with declared inputs and outputs."""

    id: Name | None = None
    name: str | None = None
    run: str = Field(min_length=1, description="Shell commands, run with `sh -e -c`.")
    env: dict[str, Scalar] = Field(default_factory=dict)
    if_: str = Field(
        default="success()",
        alias="if",
        description="Run policy: success() (default), failure() or always().",
    )
    timeout: float | None = Field(
        default=None, description="Seconds, or a string like '90s', '5m', '2h'."
    )
    retries: int = Field(default=0, ge=0, le=100)
    inputs: list[str] = Field(
        default_factory=list,
        description="Files, directories or globs the step reads (part of the cache key).",
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="Files or directories the step writes (stored as artifacts).",
    )
    cache: bool = Field(default=True, description="false: always run, never serve from cache.")
    resources: ResourcesSpec | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)


class JobSpec(_Strict):
    """Steps that run in order; jobs run in parallel unless ``needs`` orders them."""

    name: str | None = None
    needs: list[Name] = Field(default_factory=list)
    env: dict[str, Scalar] = Field(default_factory=dict)
    matrix: dict[str, list[Any]] | None = Field(
        default=None,
        description="Fan-out: one job instance per combination; optional include/exclude lists.",
    )
    runs_on: str | None = Field(
        default=None, alias="runs-on", description="The executor for this job's steps."
    )
    resources: ResourcesSpec | None = None
    htcondor: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Extra HTCondor submit commands (requirements, accounting_group, universe).",
    )
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("needs", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class PushTriggerSpec(_Strict):
    """Which pushes to a Conveyor server (or a webhook) start a run (glob patterns)."""

    branches: list[str] = Field(default_factory=lambda: ["*"])
    tags: list[str] = Field(default_factory=list)

    @field_validator("branches", "tags", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class ScheduleSpec(_Strict):
    """A cron schedule (five fields, UTC) on a branch of the server's repository."""

    cron: str = Field(min_length=1)
    branch: str = "main"


class TriggersSpec(_Strict):
    """``on:``: when a server runs the pipeline by itself (default: a push to any branch)."""

    push: PushTriggerSpec | None = Field(default_factory=PushTriggerSpec)
    schedule: list[ScheduleSpec] = Field(default_factory=list)


class PipelineSpec(_Strict):
    """A whole pipeline as the user declared it."""

    name: str = "pipeline"
    on: TriggersSpec = Field(
        default_factory=TriggersSpec,
        description="Server triggers: push (branches/tags globs) and schedule (cron).",
    )
    params: dict[Name, ParamSpec] = Field(default_factory=dict)
    env: dict[str, Scalar] = Field(default_factory=dict)
    jobs: dict[Name, JobSpec] = Field(min_length=1)

    _source: SourceMap | None = PrivateAttr(default=None)
    _format: str = PrivateAttr(default="conveyor")

    @field_validator("params", mode="before")
    @classmethod
    def _param_shorthand(cls, value: object) -> object:
        """``lr: 0.1`` is shorthand for ``lr: {type: float, default: 0.1}``."""
        if not isinstance(value, dict):
            return value
        return {k: _expand_param(v) for k, v in value.items()}

    @property
    def source(self) -> SourceMap:
        return self._source or SourceMap("<memory>")

    @property
    def format(self) -> str:
        return self._format

    def with_source(self, source: SourceMap, fmt: str) -> PipelineSpec:
        self._source = source
        self._format = fmt
        return self


def _expand_param(value: object) -> object:
    if isinstance(value, dict):
        return value
    if isinstance(value, bool):
        return {"type": "bool", "default": value}
    if isinstance(value, int):
        return {"type": "int", "default": value}
    if isinstance(value, float):
        return {"type": "float", "default": value}
    if value is None:
        return {"type": "str"}
    return {"type": "str", "default": value}
