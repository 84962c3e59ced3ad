"""A Pachyderm 2.x pipeline as declared, read from its spec (frozen, typed).

Defaults are Pachyderm's: the output branch ``master``, three tries per datum, an input
named after its repository, reprocessing ``until_success``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from conveyor.errors import Position


@dataclass(frozen=True)
class SecretMount:
    name: str
    key: str | None = None
    mount_path: str | None = None
    env_var: str | None = None


@dataclass(frozen=True)
class Transform:
    cmd: tuple[str, ...]
    stdin: tuple[str, ...] = ()
    err_cmd: tuple[str, ...] = ()
    err_stdin: tuple[str, ...] = ()
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretMount, ...] = ()
    accept_return_code: tuple[int, ...] = ()
    working_dir: str | None = None
    user: str | None = None


@dataclass(frozen=True)
class PfsInput:
    """Files of a repository's branch (or commit), cut into datums by ``glob``."""

    name: str
    repo: str
    glob: str
    branch: str = "master"
    project: str | None = None
    commit: str | None = None
    repo_type: str | None = None
    join_on: str | None = None
    group_by: str | None = None
    outer_join: bool = False
    lazy: bool = False
    empty_files: bool = False
    position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CronInput:
    """A tick on a schedule: a repository that gets a file per tick."""

    name: str
    spec: str
    repo: str
    project: str | None = None
    commit: str | None = None
    overwrite: bool = False
    start: str | None = None
    position: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CombinedInput:
    """``cross``, ``union``, ``join`` or ``group`` of other inputs."""

    kind: Literal["cross", "union", "join", "group"]
    inputs: tuple[Input, ...]
    position: Position | None = field(default=None, compare=False)


Input = PfsInput | CronInput | CombinedInput


@dataclass(frozen=True)
class Resources:
    cpu: float | None = None
    memory: str | None = None
    disk: str | None = None
    gpu_type: str | None = None
    gpu_number: int | None = None


@dataclass(frozen=True)
class DatumSetSpec:
    number: int | None = None
    size_bytes: int | None = None
    per_worker: int | None = None


@dataclass(frozen=True)
class PachydermPipeline:
    name: str
    transform: Transform
    input: Input
    project: str | None = None
    description: str | None = None
    parallelism: int | None = None
    datum_tries: int = 3
    job_timeout: float | None = None
    datum_timeout: float | None = None
    resource_requests: Resources | None = None
    resource_limits: Resources | None = None
    output_branch: str = "master"
    salt: str | None = None
    reprocess_spec: Literal["until_success", "every_job"] = "until_success"
    datum_set_spec: DatumSetSpec | None = None
    position: Position | None = field(default=None, compare=False)


def leaves(node: Input) -> tuple[PfsInput | CronInput, ...]:
    """The pfs and cron inputs of an input tree, in the order they are written."""
    if isinstance(node, CombinedInput):
        return tuple(leaf for child in node.inputs for leaf in leaves(child))
    return (node,)
