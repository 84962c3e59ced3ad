"""The one action model: what a step names (:class:`ActionRef`), where it was found
(:class:`ResolvedAction`), what its manifest declares (:class:`ActionManifest`: typed
inputs, outputs, how it runs) and the native step it becomes.

Each manifest format is a reader into this model (``action.yml``:
:mod:`conveyor.spec.action_manifest`; ``action-datatorch.yaml``:
:mod:`conveyor.spec.datatorch_manifest`); its step syntax is a translator
(:mod:`conveyor.spec.uses`, :mod:`conveyor.spec.datatorch`). Nothing downstream knows
which format an action came from: the step runs ``run`` (or ``image``), its inputs
arrive as ``INPUT_*`` variables and one JSON argument, never as shell text.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError, Position, SpecError
from conveyor.spec.expressions import value_text
from conveyor.spec.yamlsource import Loc, SourceMap, load_documents, read_text

INPUTS_ARGUMENT = '"$CONVEYOR_ACTION_INPUTS"'
"""How a script receives its inputs: one JSON document as a single argument."""
INPUT_TYPES = ("string", "number", "integer", "boolean", "array", "object", "json", "file", "any")


@dataclass(frozen=True)
class ActionRef:
    """An action as a step names it: a ``name`` (``./dir``, ``local/name``,
    ``owner/name``) with a ``tag`` (a ref), or a ``git`` repository with a tag.

    ``library`` is the repository a bare ``owner/name`` stands for in a format with its
    own library of actions (DataTorch's, on GitHub); such a name is looked for under
    the ``[actions] paths`` first. None: ``owner/name`` is a repository under the
    project's ``[actions] base``."""

    name: str
    tag: str | None = None
    git: str | None = None
    library: str | None = None

    @property
    def local(self) -> bool:
        """A directory (not a repository): ``./path``, ``../path``, ``/path``."""
        return self.git is None and self.name.startswith(("./", "../", "/"))

    def __str__(self) -> str:
        return f"{self.name}@{self.tag}" if self.tag else self.name


@dataclass(frozen=True)
class ResolvedAction:
    directory: Path
    commit: str | None = None
    """The git commit a fetched action is pinned to (None for a local directory)."""
    warning: str | None = None
    """What the user should hear about fetching it (a tag that moved)."""
    environment: Callable[[Path], str] | None = None
    """Builds an isolated Python for a requirements file and returns its interpreter
    (None: this resolver builds none)."""


ActionResolver = Callable[[ActionRef], ResolvedAction]
"""Finds an action's directory; raises ``ValueError`` or a ``ConveyorError`` with why not."""


@dataclass(frozen=True)
class InputDecl:
    type: str = "string"
    required: bool = False
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class Runs:
    """One of: ``command`` alone; ``python`` (+ ``requirements``); ``script`` (a file run
    with the inputs argument); ``image`` (+ ``command``)."""

    command: str | None = None
    python: str | None = None
    requirements: str | None = None
    script: str | None = None
    image: str | None = None
    arguments: str | None = None
    """A script's own arguments (shell text of the action's author, DataTorch's
    ``script: run.sh --flag``): given, the script gets them instead of the inputs
    argument (its inputs are the ``INPUT_*`` variables)."""


@dataclass(frozen=True)
class ActionManifest:
    name: str
    description: str | None
    inputs: dict[str, InputDecl]
    outputs: tuple[str, ...]
    runs: Runs


def local_resolver(base: Path, search: Sequence[Path] = ()) -> ActionResolver:
    """Actions in local directories: ``./path`` from ``base``, ``owner/name`` under each
    directory of ``search``, ``local/name`` in ``.conveyor/actions`` or ``search``."""

    def resolve(ref: ActionRef) -> ResolvedAction:
        if ref.local:
            return ResolvedAction((base / ref.name).resolve())
        if ref.name.startswith("local/"):
            short = ref.name.removeprefix("local/")
            for root in (base / ".conveyor" / "actions", *search):
                if (root / short).is_dir():
                    return ResolvedAction((root / short).resolve())
            raise ValueError(
                f"there is no directory {short} in .conveyor/actions or the [actions] paths"
            )
        for root in search:
            candidate = root / ref.name
            if candidate.is_dir():
                return ResolvedAction(candidate.resolve())
        raise ValueError(
            f"action {ref} is not in a local action directory, and this command does not "
            "fetch actions from git"
        )

    return resolve


class ActionReader:
    """What a translator shares: it finds the actions steps name (through the caller's
    resolver) and reads their manifests, with errors at the step that names them."""

    def __init__(self, source: SourceMap, base: Path, resolver: ActionResolver) -> None:
        self.source = source
        self.base = base.resolve()
        self.resolver = resolver
        self.read_files: list[str] = []
        """Manifests read: their bytes join the key of a cached plan."""

    def resolve(self, ref: ActionRef, shown: str, loc: Loc) -> ResolvedAction:
        """``resolver(ref)``; a refusal is an error at ``loc`` (``shown``: as the step
        names the action)."""
        try:
            return self.resolver(ref)
        except (ValueError, ConveyorError) as exc:
            detail = exc.detail if isinstance(exc, SpecError) else str(exc)
            raise self.source.error(loc, f"cannot use action {shown}: {detail}") from None

    def manifest_document(
        self, resolved: ResolvedAction, names: Sequence[str], shown: str, loc: Loc
    ) -> tuple[Any, SourceMap]:
        """The first YAML document of the action's manifest (the first of ``names`` in
        its directory); a missing manifest is an error at ``loc``."""
        directory = resolved.directory
        path = next((directory / n for n in names if (directory / n).is_file()), None)
        if path is None:
            where = shown_path(directory, self.base)
            raise self.source.error(loc, f"action {shown} has no {names[0]} in {where}")
        self.read_files.append(str(path))
        display = shown_path(path, self.base)
        documents = list(load_documents(read_text(path, display), display))
        if not documents:
            raise SpecError(f"the action manifest of {shown} is empty", Position(display))
        return documents[0]

    def command(
        self, manifest: ActionManifest, resolved: ResolvedAction, shown: str, loc: Loc
    ) -> dict[str, str]:
        """``run`` (and ``image``) of the native step that runs the action."""
        try:
            return step_command(manifest, resolved, shown, self.base)
        except ValueError as exc:
            raise self.source.error(loc, str(exc)) from None


def shown_path(path: Path, base: Path) -> str:
    """A path as a step sees it: relative to the project ``base`` when inside it."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def step_command(
    manifest: ActionManifest, resolved: ResolvedAction, shown: str, base: Path
) -> dict[str, str]:
    """``run`` (and ``image``) of the native step that runs the action; ``ValueError``
    when its Python environment cannot be built."""
    runs = manifest.runs
    if runs.image is not None:
        image = {"image": runs.image}
        return image if runs.command is None else {**image, "run": runs.command}
    if runs.command is not None:
        return {"run": runs.command}  # the author's command; inputs arrive as INPUT_*
    if runs.python is not None:
        python = "python3"
        if runs.requirements is not None:
            if resolved.environment is None:
                raise ValueError(
                    f"action {shown} needs a Python environment, and this command does not "
                    "build one (run it in a project)"
                )
            try:
                python = resolved.environment(resolved.directory / runs.requirements)
            except (ValueError, ConveyorError) as exc:
                raise ValueError(f"action {shown}: {exc}") from None
        script = shlex.quote(shown_path(resolved.directory / runs.python, base))
        return {"run": f"{shlex.quote(python)} -B {script} {INPUTS_ARGUMENT}"}  # -B: no .pyc
    assert runs.script is not None
    path = resolved.directory / runs.script
    runner = "" if os.access(path, os.X_OK) else "sh "
    arguments = INPUTS_ARGUMENT if runs.arguments is None else runs.arguments
    return {"run": f"{runner}{shlex.quote(shown_path(path, base))} {arguments}"}


def check_value(kind: str, value: Any, *, casts: bool = False) -> Any:
    """``value`` as an input of type ``kind``; ``ValueError`` says why it is not one.

    Without ``casts`` nothing is cast from text: ``"3"`` is not a number. With it (a
    format's choice: DataTorch casts), text becomes a number or a boolean, a whole float
    an integer and a boolean text. A ``json`` string is parsed; a ``file`` is a
    project-relative path."""
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, bool):
            if casts:
                return value_text(value)
        elif isinstance(value, str | int | float):
            return str(value)
        raise ValueError(f"a string is expected, and {value!r} is not one")
    if kind in ("number", "integer"):
        return _number(kind, value, casts)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if casts and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"true or false is expected, and {value!r} is neither")
    if kind in ("array", "object"):
        if isinstance(value, list if kind == "array" else dict):
            return value
        what = "a list" if kind == "array" else "a mapping"
        raise ValueError(f"{what} is expected, and {value!r} is not one")
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError(f"{value!r} is not JSON") from None
        return value
    if kind == "file":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a project path is expected, and {value!r} is not one")
        path = value.strip()
        if path.startswith(("/", "../")) or path == "..":
            raise ValueError(f"{value!r} is outside the project; a file input is a project path")
        return path
    raise ValueError(f"unknown input type {kind!r}")


def _number(kind: str, value: Any, casts: bool) -> int | float:
    what = "a whole number" if kind == "integer" else "a number"
    refused = ValueError(f"{what} is expected, and {value!r} is not one")
    number: int | float
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    elif casts and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise refused from None
    else:
        raise refused
    if kind == "number" or isinstance(number, int):
        return number
    if casts and number.is_integer():
        return int(number)
    raise refused
