"""``uses:`` steps of conveyor.yml: a reusable action with its inputs in ``with:``.

Before the native model validates the file, each ``uses`` step is rewritten into a
native step with ``run`` (or ``image``) and an ``action`` block (ref, commit, inputs,
outputs), as DataTorch steps are: the compiler and the runner then treat both alike
(inputs as ``INPUT_*`` variables and one JSON argument, never shell text; outputs as
``::name::<json>`` lines; ``${{ steps.ID.outputs.KEY }}`` resolved at launch).

The action is found by the caller's :data:`ActionResolver`; its manifest is
``action.yml`` (see :mod:`conveyor.spec.action_manifest`), read into the one action
model (:mod:`conveyor.spec.actions`). With ``action-format: datatorch`` (what
``conveyor convert`` writes for a DataTorch step whose action comes from git) it is a
DataTorch action (``action-datatorch.yaml``, or ``action-file``) run by DataTorch's rules.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.spec import datatorch_rules
from conveyor.spec.action_manifest import MANIFEST_NAMES, parse_manifest
from conveyor.spec.actions import (
    ActionManifest,
    ActionReader,
    ActionRef,
    ActionResolver,
    ResolvedAction,
    check_value,
    shown_path,
)
from conveyor.spec.datatorch_manifest import MANIFESTS as DATATORCH_MANIFESTS
from conveyor.spec.datatorch_manifest import declared_types, read_manifest, with_requirements
from conveyor.spec.datatorch_templates import render_manifest
from conveyor.spec.expressions import expressions, has_expression, is_step_output
from conveyor.spec.translate import expect_list, expect_mapping
from conveyor.spec.yamlsource import Loc, SourceMap

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)")
ACTION_PATH_VARIABLE = "CONVEYOR_ACTION_PATH"
FORMAT_KEY, FILE_KEY = "action-format", "action-file"
"""A ``uses`` step's DataTorch action: ``action-format: datatorch``, its manifest's name."""


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
        return ActionRef(head, ref, git=head)
    if text.startswith(("./", "../", "/", "local/")):
        if ref:
            raise ValueError(f"{value!r}: a local directory takes no @ref")
        return ActionRef(text)
    if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$", head) or not ref:
        raise ValueError(
            f"{value!r} is not ./path, local/name, owner/name@ref, or a git URL or "
            "repository path with @ref"
        )
    return ActionRef(head, ref)


def expand_uses(data: Any, source: SourceMap, base: Path, resolver: ActionResolver) -> Expanded:
    """``data`` (a native pipeline) with its ``uses`` steps rewritten; ``source`` gains
    the positions of the keys written, so errors point at ``uses`` and ``with``."""
    result = Expanded(copy.deepcopy(data))
    expander = _Expander(source, base, resolver, result)
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
    return any(is_step_output(expr) for expr in expressions(value))


class _Expander(ActionReader):
    def __init__(
        self, source: SourceMap, base: Path, resolver: ActionResolver, result: Expanded
    ) -> None:
        super().__init__(source, base, resolver)
        self.read_files = result.read_files
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
        datatorch = self._datatorch(step, loc)
        resolved = self.resolve(ref, value, where)
        if resolved.warning:
            self.result.warnings.append(f"{self.source.position(where)}: {resolved.warning}")
        given = expect_mapping(step.get("with") or {}, self.source, (*loc, "with"), "inputs")
        types: dict[str, str] = {}
        namespaces: dict[str, str] = {}  # what DataTorch's template namespaces give
        if datatorch is None:
            names: tuple[str, ...] = MANIFEST_NAMES
            manifest = parse_manifest(*self.manifest_document(resolved, names, value, where))
            inputs = self.inputs(value, manifest, given, loc, "with" in step)
        else:
            manifest, types = self.datatorch_manifest(
                step, ref, resolved, datatorch, namespaces, where
            )
            inputs = self.datatorch_inputs(value, manifest, types, given, loc)
        out = {k: v for k, v in step.items() if k not in ("uses", "with", FORMAT_KEY, FILE_KEY)}
        declared_inputs = expect_list_of(out.get("inputs"), self.source, (*loc, "inputs"))
        env = dict(expect_mapping(out.get("env") or {}, self.source, (*loc, "env"), "name: value"))
        env[ACTION_PATH_VARIABLE] = shown_path(resolved.directory, self.base)
        env.update(namespaces)
        if resolved.commit is None:  # a local action's code is part of the cache key
            declared_inputs.append(shown_path(resolved.directory, self.base))
        for key, declared in manifest.inputs.items():
            path = inputs.get(key)
            if declared.type == "file" and isinstance(path, str) and not _outputs_in(path):
                declared_inputs.append(path)  # templates in it are rendered with the plan
        out.update(self.command(manifest, resolved, value, where))
        out["env"] = env
        out["inputs"] = list(dict.fromkeys(declared_inputs))
        out["action"] = {
            "ref": value,
            "commit": resolved.commit,
            "inputs": inputs,
            "outputs": list(manifest.outputs),
        }
        if datatorch is not None:
            out["action"].update(rules="datatorch", types=types)
        marks = self.source.marks
        for key in ("run", "image", "action", "env", "inputs"):
            if where in marks:
                marks.setdefault((*loc, key), marks[where])
        for key in inputs:
            mark = marks.get((*loc, "with", key), marks.get(where))
            if mark is not None:
                marks[(*loc, "action", "inputs", key)] = mark
        return out

    def _datatorch(self, step: dict[str, Any], loc: Loc) -> tuple[str, ...] | None:
        """The manifest names of a DataTorch action, or None for a native one."""
        kind = step.get(FORMAT_KEY)
        if kind is None:
            if FILE_KEY in step:
                raise self.source.error((*loc, FILE_KEY), f"`{FILE_KEY}` needs `{FORMAT_KEY}`")
            return None
        if kind != "datatorch":
            raise self.source.error((*loc, FORMAT_KEY), f"{FORMAT_KEY}: {kind!r} is not datatorch")
        name = step.get(FILE_KEY)
        if name is None:
            return DATATORCH_MANIFESTS
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not name:
            raise self.source.error((*loc, FILE_KEY), f"{FILE_KEY} {name!r} must be a file name")
        return (name,)

    def datatorch_manifest(
        self,
        step: dict[str, Any],
        ref: ActionRef,
        resolved: ResolvedAction,
        names: tuple[str, ...],
        env: dict[str, str],
        where: Loc,
    ) -> tuple[ActionManifest, dict[str, str]]:
        """A DataTorch action's manifest, its namespaces rendered, and its input types."""
        value = str(step["uses"])
        document = self.manifest_document(resolved, names, value, where)
        manifest = with_requirements(read_manifest(*document, value), resolved.directory)
        ident = (str(step.get("name") or ""), str(step.get("id") or step.get("name") or ""))
        directory = shown_path(resolved.directory, self.base)
        try:
            manifest = render_manifest(manifest, ref.tag, directory, ident, env)
        except ValueError as exc:
            raise self.source.error(where, f"action {value}: {exc}") from None
        return manifest, declared_types(document[0])

    def datatorch_inputs(
        self,
        value: str,
        manifest: ActionManifest,
        types: dict[str, str],
        given: dict[str, Any],
        loc: Loc,
    ) -> dict[str, Any]:
        """Inputs as DataTorch takes them: any key, defaults for the missing, literals
        cast by its rule (references are cast at launch)."""
        inputs = {str(key): raw for key, raw in given.items()}
        for key, declared in manifest.inputs.items():
            if inputs.get(key) is None and declared.default is not None:
                inputs[key] = declared.default
            elif inputs.get(key) is None and declared.required:
                raise self.source.error(
                    (*loc, "with"),
                    f"input {key!r} is required by action {value}; give it in `with`",
                )
        for key, raw in inputs.items():
            if isinstance(raw, str) and has_expression(raw):
                continue
            try:
                inputs[key] = datatorch_rules.cast(types.get(key), raw)
            except ValueError as exc:
                raise self.source.error(
                    (*loc, "with", key), f"input {key!r} of action {value}: {exc}"
                ) from None
        return inputs

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
            if isinstance(raw, str) and has_expression(raw):
                for expr in expressions(raw):
                    if not is_step_output(expr) and declared.type not in ("string", "file"):
                        raise self.source.error(
                            where,
                            f"input {key!r} is {declared.type}: only string and file inputs "
                            f"take templates like ${{{{ {expr} }}}}; use "
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
