"""Datums and Python steps, compiled: fan-out names, the function runner's command, and
the templates of one step instance (``params``, ``matrix``, ``datum``).

Pure: the files a ``datums`` glob matches come from a :data:`Lister` the caller passes
in (the SDK lists the project directory; tests pass a fixed listing), so the same
listing always gives the same plan.

A Python step runs a small standard-library-only program with ``python3 -B -c``: it
imports ``package.module`` from the step's directory (the project, or its copy on a
worker), calls the function (with the datum's project-relative path, for a datum
step) and writes the return value as JSON. Nothing of Conveyor is needed where it
runs, and the command is the same text on every executor, so the cache key is too.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.domain.conditions import TriggerContext
from conveyor.plan.graph import normalize
from conveyor.plan.template import TemplateError, evaluate, render, render_shell
from conveyor.spec.expressions import value_text
from conveyor.spec.patterns import fixed_dir, is_glob
from conveyor.spec.yamlsource import Loc

if TYPE_CHECKING:  # annotations only: a plain-read spec compiles without pydantic
    from conveyor.spec.model import JobSpec, PipelineSpec, StepSpec

Lister = Callable[[str], Sequence[str]]
"""Project-relative paths (files or directories) that a project-relative path or glob
names, sorted; an empty sequence when nothing matches."""

PYTHON = '"${CONVEYOR_PYTHON:-python3}"'
"""The interpreter: ``$CONVEYOR_PYTHON`` when the step's environment sets it (the
pipeline's ``env``, or an executor that knows its workers' Python), else ``python3``."""
# One line, double quotes only (so shlex quotes it plainly), no bytecode written into the
# project (a __pycache__ would change the digest of a code directory declared as input).
RUNNER = (
    "import functools,importlib,json,os,sys;"
    "sys.path.insert(0,os.getcwd());"
    'm,f=sys.argv[1].split(":");'
    'v=functools.reduce(getattr,f.split("."),importlib.import_module(m))(*sys.argv[3:]);'
    "t=json.dumps(v,sort_keys=True,indent=2);"
    "r=sys.argv[2];"
    'os.makedirs(os.path.dirname(r) or ".",exist_ok=True);'
    'open(r,"w").write(t+"\\n")'
)


class DatumError(ValueError):
    """A ``datums`` entry is not usable (the compiler adds the position)."""


@dataclass(frozen=True)
class Datum:
    """One unit of a step's fanned-out input."""

    path: str
    """Project-relative path of the file or directory."""
    name: str
    """Its name in the step instance's id: the path below the glob's fixed directory."""

    @property
    def stem(self) -> str:
        base = posixpath.basename(self.name)
        stem, dot, _ = base.rpartition(".")
        return stem if dot and stem else base

    def context(self) -> dict[str, str]:
        """What ``${{ datum.* }}`` names in templates."""
        return {"path": self.path, "name": self.name, "stem": self.stem}


def expand(patterns: Sequence[str], lister: Lister) -> list[Datum]:
    """The datums ``patterns`` name, in path order; each path once."""
    found: dict[str, str] = {}
    for pattern in patterns:
        normal = normalize(pattern)
        if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
            raise DatumError(f"datum {pattern!r} is outside the project; use project paths")
        if normal.split("/", 1)[0] in (".conveyor", ".git"):
            raise DatumError(f"datum {pattern!r} is inside Conveyor's or git's own directory")
        base = _fixed_dir(normal)
        directories_only = pattern.rstrip().endswith("/") and normal != "."
        for path in lister(normal + "/" if directories_only else normal):
            path = normalize(path)
            found.setdefault(path, posixpath.relpath(path, base) if base != "." else path)
    names = list(found.values())
    if len(set(names)) != len(names):  # e.g. a/x.csv and b/x.csv from two patterns
        return [Datum(path, path) for path in sorted(found)]
    return [Datum(path, found[path]) for path in sorted(found)]


def _fixed_dir(pattern: str) -> str:
    """The directory a datum's name is relative to: the glob's fixed part, or the
    literal path's parent."""
    if not is_glob(pattern):
        return posixpath.dirname(pattern) or "."
    return fixed_dir(pattern)


def module_files(target: str, lister: Lister) -> list[str]:
    """The project files ``import package.module`` reads (the module and the
    ``__init__.py`` of each package above it), among those that exist."""
    parts = target.partition(":")[0].split(".")
    candidates = [f"{'/'.join(parts[:n])}/__init__.py" for n in range(1, len(parts))]
    candidates += [f"{'/'.join(parts)}.py", f"{'/'.join(parts)}/__init__.py"]
    return [path for candidate in candidates for path in lister(candidate)]


def python_command(target: str, result: str, datum: Datum | None) -> str:
    """The shell command that calls ``target`` and writes its return value to ``result``."""
    args = ["-B", "-c", RUNNER, target, result]
    if datum is not None:
        args.append(datum.path)
    return f"{PYTHON} {shlex.join(args)}"


@dataclass(frozen=True)
class StepContext:
    """What the steps of one job instance share."""

    spec: PipelineSpec
    job_id: str
    job: JobSpec
    instance: str
    matrix: Mapping[str, Any]
    values: Mapping[str, Any]
    trigger: TriggerContext = field(default_factory=TriggerContext)


class Renderer:
    """Templates of one step (instance), remembering the parameters they use."""

    def __init__(self, context: StepContext, datum: Datum | None) -> None:
        self.source = context.spec.source
        self.names: dict[str, Any] = {"params": context.values, "matrix": context.matrix}
        self.names.update(context.trigger.names())
        if datum is not None:
            self.names["datum"] = datum.context()
        self.used: set[str] = set()

    def __call__(self, value: Any, where: Loc, shell: bool = False) -> str:
        """``value`` rendered; with ``shell``, each value quoted for its place in the
        command (see :mod:`conveyor.plan.shell`)."""
        try:
            return (render_shell if shell else render)(value_text(value), self.names, self.used)
        except TemplateError as exc:
            raise self.source.error(where, str(exc)) from None

    def value(self, expr: str, where: Loc) -> Any:
        """The value of one expression, its type kept (a whole-string input)."""
        try:
            return evaluate(expr, self.names, self.used)
        except TemplateError as exc:
            raise self.source.error(where, str(exc)) from None


def step_datums(
    context: StepContext, step: StepSpec, loc: Loc, lister: Lister
) -> list[Datum | None]:
    """The step's datums, or ``[None]`` for a step without ``datums``."""
    if step.datums is None:
        return [None]
    text = Renderer(context, None)
    patterns = [text(p, (*loc, "datums", i)) for i, p in enumerate(step.datums)]
    try:
        found: list[Datum | None] = [*expand(patterns, lister)]
    except DatumError as exc:
        raise context.spec.source.error((*loc, "datums"), str(exc)) from None
    if not found:
        shown = ", ".join(patterns)
        raise context.spec.source.error(
            (*loc, "datums"),
            f"datums {shown} match no file or directory in the project; add the files "
            "(datums are listed when the plan is made) or fix the pattern",
        )
    return found


def default_result(context: StepContext, step_name: str, datum: Datum | None) -> str:
    """``results/JOB/STEP/DATUM.json`` for a datum step, ``results/JOB/STEP.json`` else."""
    base = f"results/{context.job_id}/{step_name}"
    return f"{base}/{datum.name}.json" if datum is not None else f"{base}.json"
