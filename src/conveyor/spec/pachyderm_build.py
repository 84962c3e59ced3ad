"""A typed spec (proto field names, values of their types) -> ``PachydermPipeline``.

The checks are the ones Pachyderm makes when a pipeline is created (a name, a transform
with a command, exactly one kind of input per input node, input names unique, a glob
for every pfs input, ``join_on``/``group_by`` in joins and groups) plus what Conveyor
needs to keep names safe as paths and environment variables: names of pipelines,
projects, repositories and inputs are letters, digits, ``_`` and ``-`` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from conveyor.errors import Position, SpecError
from conveyor.spec.pachyderm_glob import GlobError, compile_glob, references
from conveyor.spec.pachyderm_model import (
    CombinedInput,
    CronInput,
    DatumSetSpec,
    Input,
    PachydermPipeline,
    PfsInput,
    Resources,
    SecretMount,
    Transform,
)
from conveyor.spec.yamlsource import Loc


@dataclass(frozen=True)
class Report:
    """Errors of one spec: where a location was written, and how the file spells it
    (``joinOn`` or ``join_on``)."""

    where: Callable[[Loc], Position]
    spelled: Callable[[Loc], str]

    def __call__(self, loc: Loc, message: str) -> SpecError:
        return SpecError(message, self.where(loc))

    def name(self, loc: Loc) -> str:
        return self.spelled(loc)


_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUANTITY = re.compile(r"\d+(\.\d+)?([eE]\d+|[numkMGTPE]|[KMGTPE]i)?")
_CRON_WORDS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_GO_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_KINDS = ("pfs", "cron", "cross", "union", "join", "group")


def build(spec: dict[str, Any], error: Report) -> PachydermPipeline:
    pipeline = spec.get("pipeline") or {}
    name = pipeline.get("name")
    if not name:
        raise error(("pipeline",), "the spec names no pipeline: give pipeline.name")
    _check_name(name, ("pipeline", "name"), "pipeline.name", error)
    project = (pipeline.get("project") or {}).get("name") or None
    if project is not None:
        _check_name(project, ("pipeline", "project", "name"), "pipeline.project.name", error)
    if "input" not in spec:
        raise error(
            ("pipeline",),
            f"pipeline {name!r} has no input: give input.pfs "
            "(or a cross, union, join, group or cron)",
        )
    tree = _input(spec["input"], ("input",), name, error, parent=None)
    _check_names(tree, error)
    tries = spec.get("datum_tries", 0)
    if tries < 0:
        raise error(
            ("datum_tries",),
            f"{error.name(('datum_tries',))} must be 0 or more (0 means Pachyderm's default, 3)",
        )
    reprocess = spec.get("reprocess_spec", "") or "until_success"
    if reprocess not in ("until_success", "every_job"):
        raise error(
            ("reprocess_spec",),
            f'{error.name(("reprocess_spec",))} must be "until_success" or "every_job"',
        )
    for key in ("job_timeout", "datum_timeout"):
        if spec.get(key, 1) <= 0:
            raise error((key,), f"{error.name((key,))} must be longer than 0s")
    branch = spec.get("output_branch") or "master"
    _check_name(branch, ("output_branch",), error.name(("output_branch",)), error)
    return PachydermPipeline(
        name=name,
        project=project,
        description=spec.get("description"),
        transform=_transform(spec.get("transform"), name, error),
        input=tree,
        parallelism=(spec.get("parallelism_spec") or {}).get("constant"),
        datum_tries=tries or 3,
        job_timeout=spec.get("job_timeout"),
        datum_timeout=spec.get("datum_timeout"),
        resource_requests=_resources(spec.get("resource_requests"), ("resource_requests",), error),
        resource_limits=_resources(spec.get("resource_limits"), ("resource_limits",), error),
        output_branch=branch,
        salt=spec.get("salt") or None,
        reprocess_spec=cast(Any, reprocess),
        datum_set_spec=_datum_set(spec.get("datum_set_spec"), error),
        position=error.where(()),
    )


def _check_name(value: str, loc: Loc, what: str, error: Report) -> None:
    if not _NAME.fullmatch(value):
        raise error(loc, f"{what} {value!r} must be letters, digits, '_' and '-' only")


def _transform(data: dict[str, Any] | None, pipeline: str, error: Report) -> Transform:
    if not data or not data.get("cmd"):
        loc: Loc = ("transform", "cmd") if data else ("pipeline",)
        raise error(
            loc, f'pipeline {pipeline!r} has no command: give transform.cmd, such as ["sh"]'
        )
    for key in data.get("env", {}):
        if not _ENV_NAME.fullmatch(key):
            raise error(("transform", "env", key), f"transform.env: {key!r} is not a variable name")
    secrets = []
    for index, secret in enumerate(data.get("secrets", [])):
        here: Loc = ("transform", "secrets", index)
        if not secret.get("name"):
            raise error(here, f"{error.name(here)} names no secret: give its name")
        if not secret.get("mount_path") and not (secret.get("key") and secret.get("env_var")):
            raise error(here, f"{error.name(here)} needs a mount_path, or a key and an env_var")
        secrets.append(SecretMount(**secret))
    return Transform(
        cmd=tuple(data["cmd"]),
        stdin=tuple(data.get("stdin", ())),
        err_cmd=tuple(data.get("err_cmd", ())),
        err_stdin=tuple(data.get("err_stdin", ())),
        image=data.get("image") or None,
        env=tuple(sorted(data.get("env", {}).items())),
        secrets=tuple(secrets),
        accept_return_code=tuple(data.get("accept_return_code", ())),
        working_dir=data.get("working_dir") or None,
        user=data.get("user") or None,
    )


def _input(
    data: dict[str, Any], loc: Loc, pipeline: str, error: Report, parent: str | None
) -> Input:
    kinds = [kind for kind in _KINDS if kind in data]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise error(
            loc, f"{error.name(loc)} must set exactly one of {', '.join(_KINDS)} (found {found})"
        )
    kind = kinds[0]
    here = (*loc, kind)
    if kind == "pfs":
        return _pfs(data["pfs"], here, error, parent)
    if kind == "cron":
        return _cron(data["cron"], here, pipeline, error)
    children = data[kind]
    if not children:
        raise error(here, f"{error.name(here)} lists no inputs")
    inputs = []
    for index, child in enumerate(children):
        if kind in ("join", "group") and "pfs" not in child:
            raise error(
                (*here, index), f"{error.name((*here, index))}: a {kind} combines pfs inputs only"
            )
        inputs.append(_input(child, (*here, index), pipeline, error, kind))
    return CombinedInput(cast(Any, kind), tuple(inputs), position=error.where(here))


def _pfs(data: dict[str, Any], loc: Loc, error: Report, parent: str | None) -> PfsInput:
    repo = data.get("repo")
    if not repo:
        raise error(loc, f"{error.name(loc)} names no repo")
    _check_name(repo, (*loc, "repo"), f"{error.name((*loc, 'repo'))}", error)
    name = data.get("name") or repo
    _check_name(name, (*loc, "name"), f"{error.name((*loc, 'name'))}", error)
    if "glob" not in data or data["glob"] == "":
        raise error(
            loc,
            f'{error.name(loc)} has no glob: give one, such as "/*" (a datum per top-level file)',
        )
    try:
        glob = compile_glob(data["glob"])
    except GlobError as exc:
        raise error(
            (*loc, "glob"), f"{error.name((*loc, 'glob'))} {data['glob']!r} can never match: {exc}"
        ) from None
    for key, kind in (("join_on", "join"), ("group_by", "group")):
        template = data.get(key)
        if parent == kind and not template:
            raise error(loc, f'{error.name(loc)} is in a {kind} and needs {key}, such as "$1"')
        if template and parent != kind:
            raise error((*loc, key), f"{error.name((*loc, key))} is read only in a {kind} input")
        if template:
            wanted = references(template)
            if not wanted:
                raise error(
                    (*loc, key),
                    f"{error.name((*loc, key))} {template!r} names no capture group ($1, $2...)",
                )
            if max(wanted) > glob.groups or min(wanted) < 1:
                raise error(
                    (*loc, key),
                    f"{error.name((*loc, key))} names ${max(wanted)} but the glob "
                    f"{data['glob']!r} has {glob.groups} capture group(s)",
                )
    if data.get("outer_join") and parent != "join":
        raise error(
            (*loc, "outer_join"), f"{error.name((*loc, 'outer_join'))} is read only in a join input"
        )
    branch = data.get("branch") or "master"
    _check_name(branch, (*loc, "branch"), f"{error.name((*loc, 'branch'))}", error)
    return PfsInput(
        name=name,
        repo=repo,
        glob=glob.pattern,
        branch=branch,
        project=data.get("project") or None,
        commit=data.get("commit") or None,
        repo_type=data.get("repo_type") or None,
        join_on=data.get("join_on") or None,
        group_by=data.get("group_by") or None,
        outer_join=bool(data.get("outer_join")),
        lazy=bool(data.get("lazy")),
        empty_files=bool(data.get("empty_files")),
        position=error.where(loc),
    )


def _cron(data: dict[str, Any], loc: Loc, pipeline: str, error: Report) -> CronInput:
    name = data.get("name")
    if not name:
        raise error(loc, f"{error.name(loc)} has no name")
    _check_name(name, (*loc, "name"), f"{error.name((*loc, 'name'))}", error)
    spec = (data.get("spec") or "").strip()
    every = spec.startswith("@every ") and _GO_DURATION.fullmatch(spec[7:].strip())
    if not (every or spec in _CRON_WORDS or len(spec.split()) in (5, 6)):
        raise error(
            (*loc, "spec"),
            f"{error.name((*loc, 'spec'))} {spec!r} is not a schedule: give five cron fields, "
            'such as "*/10 * * * *", or "@every 10s"',
        )
    repo = data.get("repo") or f"{pipeline}_{name}"
    _check_name(repo, (*loc, "repo"), f"{error.name((*loc, 'repo'))}", error)
    return CronInput(
        name=name,
        spec=spec,
        repo=repo,
        project=data.get("project") or None,
        commit=data.get("commit") or None,
        overwrite=bool(data.get("overwrite")),
        start=data.get("start"),
        position=error.where(loc),
    )


def _check_names(tree: Input, error: Report) -> dict[str, PfsInput | CronInput]:
    """Input names are directories under /pfs and variable names: never ``out``, and
    unique among the inputs one datum can hold (the inputs of a union are alternatives,
    so they may share a name, as Pachyderm allows)."""
    if not isinstance(tree, CombinedInput):
        if tree.name == "out":
            raise SpecError("an input cannot be named 'out': /pfs/out is the output", tree.position)
        return {tree.name: tree}
    seen: dict[str, PfsInput | CronInput] = {}
    for child in tree.inputs:
        names = _check_names(child, error)
        if tree.kind == "union":
            seen.update((k, v) for k, v in names.items() if k not in seen)
            continue
        for name, leaf in names.items():
            if name in seen:
                raise SpecError(
                    f"two inputs of this {tree.kind} are named {name!r} (each input is "
                    "/pfs/<name>): give one of them another name",
                    leaf.position,
                )
            seen[name] = leaf
    return seen


def _resources(data: dict[str, Any] | None, loc: Loc, error: Report) -> Resources | None:
    if not data:
        return None
    for key in ("memory", "disk"):
        if key in data and not _QUANTITY.fullmatch(data[key]):
            raise error(
                (*loc, key),
                f'{error.name((*loc, key))} {data[key]!r} is not a quantity such as "2Gi"',
            )
    if data.get("cpu", 0) < 0:
        raise error((*loc, "cpu"), f"{error.name((*loc, 'cpu'))} must be 0 or more")
    gpu = data.get("gpu") or {}
    return Resources(
        cpu=data.get("cpu"),
        memory=data.get("memory"),
        disk=data.get("disk"),
        gpu_type=gpu.get("type"),
        gpu_number=gpu.get("number"),
    )


def _datum_set(data: dict[str, Any] | None, error: Report) -> DatumSetSpec | None:
    if not data:
        return None
    for key, value in data.items():
        if value < 0:
            raise error(("datum_set_spec", key), f"datum_set_spec.{key} must be 0 or more")
    return DatumSetSpec(**data)
