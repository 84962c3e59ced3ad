"""``uses:`` steps of conveyor.yml: a reusable action with its inputs in ``with:``.

Before the native model validates the file, each ``uses`` step is rewritten into a
native step with ``run`` (or ``image``) and an ``action`` block (ref, commit, inputs,
outputs), as DataTorch steps are: the compiler and the runner then treat both alike
(inputs as ``INPUT_*`` variables and one JSON argument, never shell text; outputs as
``::name::<json>`` lines; ``${{ steps.ID.outputs.KEY }}`` resolved at launch).

The action is found by the caller's :data:`ActionResolver`; its manifest is
``action.yml`` (see :mod:`conveyor.spec.action_manifest`).
"""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError, Position, SpecError
from conveyor.spec.action_manifest import (
    MANIFEST_NAMES,
    ActionManifest,
    check_value,
    parse_manifest,
)
from conveyor.spec.datatorch import ActionRef, ActionResolver, ResolvedAction
from conveyor.spec.translate import expect_list, expect_mapping
from conveyor.spec.yamlsource import Loc, SourceMap, load_documents, read_text

_EXPR = re.compile(r"\$\{\{(.*?)\}\}")
_STEP_REF = re.compile(r"^\s*steps\.[A-Za-z0-9_-]+\.outputs\.[A-Za-z0-9_-]+\s*$")
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)")
ACTION_PATH_VARIABLE = "CONVEYOR_ACTION_PATH"


@dataclass
class Expanded:
    data: Any
    read_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def has_uses(data: Any) -> bool:
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, dict):
        return False
    return any(
        isinstance(step, dict) and "uses" in step
        for job in jobs.values()
        if isinstance(job, dict) and isinstance(job.get("steps"), list)
        for step in job["steps"]
    )


def stub_uses(data: Any) -> Any:
    """``data`` with each ``uses`` step's action replaced by a no-op command: for reading
    a pipeline's settings (``on:``) where its actions cannot be fetched (a server reading
    a pushed commit). Never for running it."""
    if not has_uses(data):
        return data
    stubbed = copy.deepcopy(data)
    for job in stubbed["jobs"].values():
        if isinstance(job, dict) and isinstance(job.get("steps"), list):
            for step in job["steps"]:
                if isinstance(step, dict) and "uses" in step:
                    step.pop("uses")
                    step.pop("with", None)
                    step.setdefault("run", ":")
    return stubbed


def parse_uses(value: str) -> ActionRef:
    """``./dir``, ``local/name``, ``owner/name@ref``, ``URL@ref`` or ``/repo/path@ref``."""
    text = value.strip()
    head, sep, ref = text.rpartition("@")
    if text.endswith("@"):
        raise ValueError(f"{value!r} ends with @: name a ref (a tag, branch or commit)")
    if not sep or "/" in ref or ":" in ref:  # no @ref (git@host: is not one)
        head, ref = text, ""
    if _URL.match(text) or (text.startswith(("./", "../", "/")) and ref):
        if not ref:
            raise ValueError(f"{value!r} names a repository: add @ref (a tag, branch or commit)")
        return ActionRef(head, ref, git=head, native=True)
    if text.startswith(("./", "../", "/", "local/")):
        if ref:
            raise ValueError(f"{value!r}: a local directory takes no @ref")
        return ActionRef(text, native=True)
    if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$", head) or not ref:
        raise ValueError(
            f"{value!r} is not ./path, local/name, owner/name@ref, or a git URL or "
            "repository path with @ref"
        )
    return ActionRef(head, ref, native=True)


def expand_uses(data: Any, source: SourceMap, base: Path, resolver: ActionResolver) -> Expanded:
    """``data`` (a native pipeline) with its ``uses`` steps rewritten; ``source`` gains
    the positions of the keys written, so errors point at ``uses`` and ``with``."""
    result = Expanded(copy.deepcopy(data))
    expander = _Expander(source, base.resolve(), resolver, result)
    for job_id, job in result.data["jobs"].items():
        if not isinstance(job, dict) or not isinstance(job.get("steps"), list):
            continue
        for index, step in enumerate(job["steps"]):
            if isinstance(step, dict) and "uses" in step:
                job["steps"][index] = expander.step(step, ("jobs", job_id, "steps", index))
    return result


def expect_list_of(value: Any, source: SourceMap, loc: Loc) -> list[Any]:
    if value is None:
        return []
    return list(expect_list(value, source, loc, "files, directories or globs"))


def _outputs_in(value: str) -> bool:
    return any(_STEP_REF.match(expr) for expr in _EXPR.findall(value))


class _Expander:
    def __init__(
        self, source: SourceMap, base: Path, resolver: ActionResolver, result: Expanded
    ) -> None:
        self.source = source
        self.base = base
        self.resolver = resolver
        self.result = result

    def step(self, step: dict[str, Any], loc: Loc) -> dict[str, Any]:
        where: Loc = (*loc, "uses")
        for key in ("run", "python", "action", "image"):
            if key in step:
                raise self.source.error((*loc, key), f"a step with `uses` has no `{key}`")
        value = step["uses"]
        if not isinstance(value, str):
            raise self.source.error(where, "uses is a string: ./path, local/name, owner/name@ref")
        try:
            ref = parse_uses(value)
        except ValueError as exc:
            raise self.source.error(where, str(exc)) from None
        try:
            resolved = self.resolver(ref)
        except (ValueError, ConveyorError) as exc:
            detail = exc.detail if isinstance(exc, SpecError) else str(exc)
            raise self.source.error(where, f"cannot use action {value}: {detail}") from None
        if resolved.warning:
            self.result.warnings.append(f"{self.source.position(where)}: {resolved.warning}")
        manifest = self.manifest(value, resolved, where)
        given = expect_mapping(step.get("with") or {}, self.source, (*loc, "with"), "inputs")
        inputs = self.inputs(value, manifest, given, loc, "with" in step)
        out = {k: v for k, v in step.items() if k not in ("uses", "with")}
        declared_inputs = expect_list_of(out.get("inputs"), self.source, (*loc, "inputs"))
        env = dict(expect_mapping(out.get("env") or {}, self.source, (*loc, "env"), "name: value"))
        env[ACTION_PATH_VARIABLE] = self.shown(resolved.directory)
        if resolved.commit is None:  # a local action's code is part of the cache key
            declared_inputs.append(self.shown(resolved.directory))
        for key, declared in manifest.inputs.items():
            path = inputs.get(key)
            if declared.type == "file" and isinstance(path, str) and not _outputs_in(path):
                declared_inputs.append(path)  # templates in it are rendered with the plan
        out.update(self.command(value, manifest, resolved, where))
        out["env"] = env
        out["inputs"] = list(dict.fromkeys(declared_inputs))
        out["action"] = {
            "ref": value,
            "commit": resolved.commit,
            "inputs": inputs,
            "outputs": list(manifest.outputs),
        }
        marks = self.source.marks
        for key in ("run", "image", "action", "env", "inputs"):
            if where in marks:
                marks.setdefault((*loc, key), marks[where])
        for key in inputs:
            mark = marks.get((*loc, "with", key), marks.get(where))
            if mark is not None:
                marks[(*loc, "action", "inputs", key)] = mark
        return out

    def command(
        self, value: str, manifest: ActionManifest, resolved: ResolvedAction, where: Loc
    ) -> dict[str, str]:
        """``run`` (and ``image``) of the native step."""
        out: dict[str, str] = {}
        runs = manifest.runs
        if runs.image is not None:
            out["image"] = runs.image
            if runs.command is not None:
                out["run"] = str(runs.command)
        elif runs.python is not None:
            python = "python3"
            if runs.requirements is not None:
                requirements = resolved.directory / runs.requirements
                if resolved.environment is None:
                    raise self.source.error(
                        where,
                        f"action {value} needs a Python environment, and this command "
                        "does not build one (run it in a project)",
                    )
                try:
                    python = resolved.environment(requirements)
                except (ValueError, ConveyorError) as exc:
                    raise self.source.error(where, f"action {value}: {exc}") from None
            script = shlex.quote(self.shown(resolved.directory / runs.python))
            out["run"] = f'{shlex.quote(python)} -B {script} "$CONVEYOR_ACTION_INPUTS"'
        else:
            out["run"] = str(runs.command)
        return out

    def manifest(self, value: str, resolved: ResolvedAction, where: Loc) -> ActionManifest:
        directory = resolved.directory
        path = next((directory / n for n in MANIFEST_NAMES if (directory / n).is_file()), None)
        if path is None:
            raise self.source.error(
                where, f"action {value} has no action.yml in {self.shown(directory)}"
            )
        self.result.read_files.append(str(path))
        shown = self.shown(path)
        documents = list(load_documents(read_text(path, shown), shown))
        if not documents:
            raise SpecError(f"the action manifest of {value} is empty", Position(shown))
        return parse_manifest(*documents[0])

    def inputs(
        self,
        value: str,
        manifest: ActionManifest,
        given: dict[str, Any],
        loc: Loc,
        has_with: bool,
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for key, raw in given.items():
            where: Loc = (*loc, "with", key)
            declared = manifest.inputs.get(str(key))
            if declared is None:
                known = ", ".join(manifest.inputs) or "none"
                raise self.source.error(
                    where, f"action {value} has no input {key!r} (its inputs: {known})"
                )
            if isinstance(raw, str) and "${{" in raw:
                for expr in _EXPR.findall(raw):
                    if not _STEP_REF.match(expr) and declared.type not in ("string", "file"):
                        raise self.source.error(
                            where,
                            f"input {key!r} is {declared.type}: only string and file inputs "
                            f"take templates like ${{{{{expr}}}}}; use "
                            "${{ steps.ID.outputs.NAME }} or a literal",
                        )
                # templates are rendered with the plan, outputs at launch
                inputs[str(key)] = raw
                continue
            try:
                inputs[str(key)] = check_value(declared.type, raw)
            except ValueError as exc:
                raise self.source.error(where, f"input {key!r} of action {value}: {exc}") from None
        for key, declared in manifest.inputs.items():
            if key in inputs:
                continue
            if declared.default is not None:
                inputs[key] = declared.default
            elif declared.required:
                where = (*loc, "with") if has_with else (*loc, "uses")
                raise self.source.error(
                    where, f"input {key!r} is required by action {value}; give it in `with`"
                )
        return inputs

    def shown(self, path: Path) -> str:
        """A path as a step sees it: project-relative when inside the project."""
        try:
            return path.resolve().relative_to(self.base).as_posix()
        except ValueError:
            return str(path.resolve())
