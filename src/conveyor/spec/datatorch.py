"""DataTorch pipelines: ``jobs`` (in parallel) of ``steps`` (in order) that run actions.

Each step names an action (``owner/name@tag``, ``{name, tag, git}`` or ``./path``); the
action's manifest ``action-datatorch.yaml`` declares typed inputs (``required``,
``default``), outputs and how it runs (``runs.using``: python, cmd or shell). The step
becomes a native step whose command runs the action and whose ``action`` block carries
the inputs; references to earlier steps' outputs stay as ``${{ steps.ID.outputs.KEY }}``
for the runner to resolve just before the step starts. Where an action lives is decided
by an :data:`ActionResolver` the caller gives (local paths here; git in the SDK).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conveyor.spec.actions import (
    ActionReader,
    ActionRef,
    ActionResolver,
    check_value,
    local_resolver,
    shown_path,
)
from conveyor.spec.datatorch_manifest import MANIFESTS, read_manifest
from conveyor.spec.expressions import (
    EXPRESSION,
    has_expression,
    is_step_output,
    step_output,
    value_text,
    whole_expression,
)
from conveyor.spec.load import validate
from conveyor.spec.model import PipelineSpec
from conveyor.spec.translate import Translation, check_keys, expect_list, expect_mapping, slug
from conveyor.spec.yamlsource import Loc, SourceMap, describe

_INPUT_REF = re.compile(r"^(?:inputs|variable)\.([A-Za-z0-9_-]+)$")


def library_url(name: str) -> str:
    """The repository of a named DataTorch action: on GitHub, ``datatorch/x`` being
    ``datatorch-actions/x`` (as in DataTorch's own agent)."""
    if name.lower().startswith("datatorch/"):
        name = "datatorch-actions/" + name.split("/", 1)[1]
    return f"https://github.com/{name}.git"


def translate(
    documents: Sequence[tuple[Any, SourceMap]],
    display: str,
    fmt: str,
    base: Path,
    resolver: ActionResolver | None,
) -> PipelineSpec:
    """The translator :mod:`conveyor.spec.formats` calls."""
    return parse_datatorch(documents, display, base, resolver or local_resolver(base))


def parse_datatorch(
    documents: Sequence[tuple[Any, SourceMap]], display: str, base: Path, resolver: ActionResolver
) -> PipelineSpec:
    if len(documents) != 1:
        raise documents[1][1].error((), "a DataTorch pipeline file holds one YAML document")
    data, source = documents[0]
    doc = expect_mapping(data, source, (), "a DataTorch pipeline with `name` and `jobs`")
    check_keys(doc, source, (), {"name", "jobs", "triggers"}, {}, "a DataTorch pipeline")
    if "name" not in doc:
        raise source.error((), "a DataTorch pipeline needs a `name`")
    jobs_data = expect_mapping(doc.get("jobs"), source, ("jobs",), "job id -> job")
    if not jobs_data:
        raise source.error(("jobs",), "a DataTorch pipeline needs at least one job")
    loader = _Loader(source, Translation(display), base, resolver)
    jobs = {job_id: loader.job(str(job_id), job) for job_id, job in jobs_data.items()}
    warnings = []
    if "triggers" in doc:
        names = ", ".join(map(str, expect_mapping(doc["triggers"], source, ("triggers",), "")))
        warnings.append(
            f"{source.position(('triggers',))}: triggers ({names}) are ignored: "
            "a pipeline runs when `conveyor run` is called"
        )
    spec = validate({"name": str(doc["name"]), "jobs": jobs}, loader.result.out, "datatorch")
    return spec.with_read_files(tuple(loader.read_files)).with_warnings(tuple(warnings))


class _Loader(ActionReader):
    def __init__(
        self, source: SourceMap, result: Translation, base: Path, resolver: ActionResolver
    ) -> None:
        super().__init__(source, base, resolver)
        self.result = result

    def job(self, job_id: str, data: Any) -> dict[str, Any]:
        loc: Loc = ("jobs", job_id)
        job = expect_mapping(data, self.source, loc, "a job with `steps`")
        check_keys(job, self.source, loc, {"name", "steps"}, {}, "a DataTorch job")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", job_id):
            raise self.source.error(loc, f"job id {job_id!r} must start with a letter or _")
        steps = expect_list(job.get("steps"), self.source, (*loc, "steps"), "steps")
        if not steps:
            raise self.source.error(loc, f"job {job_id!r} needs at least one step")
        self.result.mark(("jobs", job_id), self.source, loc)
        variables: dict[str, Any] = {}  # inputs and outputs so far in this job
        out: dict[str, Any] = {"steps": []}
        if "name" in job:
            out["name"] = str(job["name"])
        seen: set[str] = set()
        for index, step in enumerate(steps):
            native = self.step(job_id, index, step, variables)
            if native["id"] in seen:
                raise self.source.error(
                    (*loc, "steps", index),
                    f"two steps of job {job_id!r} have the id {native['id']!r}",
                )
            seen.add(native["id"])
            out["steps"].append(native)
        return out

    def step(self, job_id: str, index: int, data: Any, variables: dict[str, Any]) -> dict[str, Any]:
        loc: Loc = ("jobs", job_id, "steps", index)
        native: Loc = ("jobs", job_id, "steps", index)
        step = expect_mapping(data, self.source, loc, "a step with an `action`")
        check_keys(
            step,
            self.source,
            loc,
            {"name", "id", "action", "inputs", "cache"},
            {},
            "a DataTorch step",
        )
        self.result.mark(native, self.source, loc)
        if "action" not in step:
            raise self.source.error(loc, f"{describe(loc)} needs an `action`")
        name = str(step.get("name") or "")
        ident = str(step.get("id") or slug(name, f"step-{index + 1}"))
        ref = self.action_ref(step["action"], (*loc, "action"))
        resolved = self.resolve(ref, str(ref), (*loc, "action"))
        document = self.manifest_document(resolved, MANIFESTS, str(ref), (*loc, "action"))
        manifest = read_manifest(*document, str(ref))
        given = expect_mapping(
            step.get("inputs", {}), self.source, (*loc, "inputs"), "input values"
        )
        inputs: dict[str, Any] = {}
        for key, value in given.items():
            inputs[str(key)] = self.render(value, {**variables, **inputs}, (*loc, "inputs", key))
        for key, declared in manifest.inputs.items():
            where = (*loc, "inputs", key) if key in inputs else (*loc, "action")
            if key not in inputs and declared.default is not None:
                inputs[key] = declared.default
            elif key not in inputs and declared.required:
                raise self.source.error(
                    where if key in given else loc,
                    f"step {ident!r}: input {key!r} is required by action {ref}",
                )
            if key in inputs:
                inputs[key] = self.coerce(key, inputs[key], declared.type, where)
        variables.update(inputs)
        variables.update({o: step_output(ident, o) for o in manifest.outputs})
        for key in ("id", "name", "run", "action"):
            self.result.mark(
                (*native, key), self.source, (*loc, "action" if key != "name" else "name")
            )
        self.result.mark((*native, "action", "inputs"), self.source, (*loc, "inputs"))
        for key in inputs:
            self.result.mark((*native, "action", "inputs", key), self.source, (*loc, "inputs", key))
        command = self.command(manifest, resolved, str(ref), (*loc, "action"))
        out: dict[str, Any] = {
            "id": ident,
            "run": command["run"],
            "cache": bool(step.get("cache", False)),
        }
        if name:
            out["name"] = name
        if resolved.commit is None:  # a local action's code is part of the cache key
            out["inputs"] = [shown_path(resolved.directory, self.base)]
        out["action"] = {
            "ref": str(ref),
            "commit": resolved.commit,
            "inputs": inputs,
            "outputs": list(manifest.outputs),
        }
        return out

    def action_ref(self, value: Any, loc: Loc) -> ActionRef:
        if isinstance(value, str):
            if value.startswith(("./", "../", "/")):
                return ActionRef(value)
            name, sep, tag = value.strip().partition("@")
            if not sep or not name or not tag:
                raise self.source.error(loc, f"action {value!r} must be owner/name@tag or ./path")
            return ActionRef(name, tag, library=library_url(name))
        action = expect_mapping(
            value, self.source, loc, "an action: owner/name@tag or {name, tag, git}"
        )
        check_keys(action, self.source, loc, {"name", "tag", "git"}, {}, "an action")
        for key in ("name", "tag"):
            if not action.get(key):
                raise self.source.error(loc, f"an action object needs `{key}`")
        git = str(action["git"]) if action.get("git") else None
        name = str(action["name"])
        return ActionRef(name, str(action["tag"]), git, library_url(name))

    def render(self, value: Any, variables: dict[str, Any], loc: Loc) -> Any:
        """Resolve ``${{ inputs.K }}`` now (to a value, or to a step output reference)."""
        if not isinstance(value, str) or not has_expression(value):
            return value

        def lookup(expr: str) -> Any:
            if is_step_output(expr):
                return f"${{{{ {expr} }}}}"
            match = _INPUT_REF.match(expr)
            if not match:
                raise self.source.error(
                    loc,
                    f"${{{{ {expr} }}}} is not supported; use ${{{{ inputs.NAME }}}} or "
                    "${{ steps.ID.outputs.NAME }}",
                )
            if match.group(1) not in variables:
                known = ", ".join(sorted(variables)) or "none yet"
                raise self.source.error(
                    loc, f"inputs.{match.group(1)} is not defined (defined: {known})"
                )
            return variables[match.group(1)]

        whole = whole_expression(value)
        if whole is not None:  # a whole-string reference keeps its type
            return lookup(whole)
        return EXPRESSION.sub(lambda m: value_text(lookup(m.group(1))), value)

    def coerce(self, key: str, value: Any, kind: str, loc: Loc) -> Any:
        """A literal as the declared type, cast as DataTorch casts it ("3" -> 3)."""
        if value is None or (isinstance(value, str) and has_expression(value)):
            return value
        try:
            return check_value(kind, value, casts=True)
        except ValueError:
            raise self.source.error(loc, f"input {key!r} is {kind}, and {value!r} is not") from None
