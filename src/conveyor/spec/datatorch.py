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

from conveyor.spec import datatorch_rules
from conveyor.spec import datatorch_templates as templates
from conveyor.spec.actions import (
    ActionManifest,
    ActionReader,
    ActionRef,
    ActionResolver,
    ResolvedAction,
    local_resolver,
    shown_path,
)
from conveyor.spec.datatorch_manifest import (
    MANIFESTS,
    declared_types,
    manifest_cache,
    read_manifest,
    with_requirements,
)
from conveyor.spec.expressions import (
    EXPRESSION,
    has_expression,
    step_output,
)
from conveyor.spec.load import validate
from conveyor.spec.model import PipelineSpec
from conveyor.spec.translate import Translation, check_keys, expect_list, expect_mapping, slug
from conveyor.spec.yamlsource import Loc, SourceMap, describe

# DataTorch's own reference syntax (its resolver.py): a step by name (or id here),
# ``output``/``input`` the aliases of ``outputs``/``inputs``.
_STEP_REF = re.compile(r"^steps\.(?P<step>[^}]+?)\.outputs?\.(?P<key>[\w.\-]+)$")
_INPUT_REF = re.compile(r"^inputs?\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)$")
# DataTorch's job-wide ``variable`` namespace of its README pipelines (before 0.8.0): the
# outputs of the job's earlier steps, the latest first
_VARIABLE_REF = re.compile(r"^variable\.(?P<key>[\w\-]+)$")
_IGNORED = {"project": "the DataTorch project a pipeline is uploaded to has no meaning here"}


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
    check_keys(
        doc,
        source,
        (),
        {"name", "jobs", "triggers", "$schema", "project"},
        {},
        "a DataTorch pipeline",
    )
    if "name" not in doc:
        raise source.error((), "a DataTorch pipeline needs a `name`")
    jobs_data = expect_mapping(doc.get("jobs"), source, ("jobs",), "job id -> job")
    if not jobs_data:
        raise source.error(("jobs",), "a DataTorch pipeline needs at least one job")
    loader = _Loader(source, Translation(display), base, resolver)
    jobs = {job_id: loader.job(str(job_id), job) for job_id, job in jobs_data.items()}
    warnings = [
        f"{source.position((key,))}: `{key}` is ignored: {why}"
        for key, why in _IGNORED.items()
        if key in doc
    ]
    if "triggers" in doc:
        names = ", ".join(map(str, expect_mapping(doc["triggers"], source, ("triggers",), "")))
        warnings.append(
            f"{source.position(('triggers',))}: triggers ({names}) are ignored: "
            "a pipeline runs when `conveyor run` is called"
        )
    native: dict[str, Any] = {"name": str(doc["name"]), "jobs": jobs}
    if loader.params:  # the trigger's inputs: `conveyor run --param NAME=VALUE`
        native["params"] = {name: {"type": "str"} for name in sorted(loader.params)}
    spec = validate(native, loader.result.out, "datatorch")
    return spec.with_read_files(tuple(loader.read_files)).with_warnings(tuple(warnings))


class _Loader(ActionReader):
    def __init__(
        self, source: SourceMap, result: Translation, base: Path, resolver: ActionResolver
    ) -> None:
        super().__init__(source, base, resolver)
        self.result = result
        self.files: dict[ActionRef, str] = {}
        """Manifest file names given by an action reference's ``file:``."""
        self.params: set[str] = set()
        """Trigger inputs the pipeline reads (``${{ input.KEY }}``)."""

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
        earlier: dict[str, dict[str, Any]] = {}  # earlier steps by name and by id
        out: dict[str, Any] = {"steps": []}
        if "name" in job:
            out["name"] = str(job["name"])
        seen: set[str] = set()
        for index, step in enumerate(steps):
            native = self.step(job_id, index, step, earlier)
            if native["id"] in seen:
                raise self.source.error(
                    (*loc, "steps", index),
                    f"two steps of job {job_id!r} have the id {native['id']!r}",
                )
            seen.add(native["id"])
            out["steps"].append(native)
            earlier[native["id"]] = native
            if native.get("name"):  # DataTorch's own key: a later same name wins
                earlier[native["name"]] = native
        return out

    def step(
        self, job_id: str, index: int, data: Any, earlier: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
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
        names = (ref_file,) if (ref_file := self.files.get(ref)) else MANIFESTS
        document = self.manifest_document(resolved, names, str(ref), (*loc, "action"))
        manifest = read_manifest(*document, str(ref))
        manifest = with_requirements(manifest, resolved.directory)
        env: dict[str, str] = {}
        manifest = self.templates(manifest, ref, resolved, (name, ident), env, (*loc, "action"))
        given = expect_mapping(
            step.get("inputs", {}), self.source, (*loc, "inputs"), "input values"
        )
        types = declared_types(document[0])
        inputs: dict[str, Any] = {}
        for key, value in given.items():
            inputs[str(key)] = self.render(value, earlier, (*loc, "inputs", key))
        for key, declared in manifest.inputs.items():
            where = (*loc, "inputs", key) if key in given else (*loc, "action")
            if inputs.get(key) is None and declared.default is not None:
                inputs[key] = declared.default
            elif inputs.get(key) is None and declared.required:
                raise self.source.error(
                    where if key in given else loc,
                    f"step {ident!r}: input {key!r} is required by action {ref}",
                )
            if key in inputs:
                inputs[key] = self.coerce(key, inputs[key], types.get(key), where)
        for key in ("id", "name", "run", "image", "action"):
            self.result.mark(
                (*native, key), self.source, (*loc, "action" if key != "name" else "name")
            )
        self.result.mark((*native, "action", "inputs"), self.source, (*loc, "inputs"))
        for key in inputs:
            self.result.mark((*native, "action", "inputs", key), self.source, (*loc, "inputs", key))
        command = self.command(manifest, resolved, str(ref), (*loc, "action"))

        out: dict[str, Any] = {
            "id": ident,
            **command,  # run, or image: a docker action runs its image as it is
            "cache": bool(step.get("cache", manifest_cache(document[0]))),
        }
        if name:
            out["name"] = name
        if env:  # the values DataTorch's namespaces give the command
            out["env"] = env
            self.result.mark((*native, "env"), self.source, (*loc, "action"))
        if resolved.commit is None:  # a local action's code is part of the cache key
            out["inputs"] = [shown_path(resolved.directory, self.base)]
        out["action"] = {
            "ref": str(ref),
            "commit": resolved.commit,
            "inputs": inputs,
            "outputs": list(manifest.outputs),
            "rules": "datatorch",
            "types": {key: kind for key, kind in types.items() if key in inputs},
        }
        if resolved.commit is not None:  # fetched: `conveyor convert` names it again
            out["action"]["uses"] = f"{ref.git or ref.library}@{ref.tag}"
            if ref in self.files:
                out["action"]["file"] = self.files[ref]
        return out

    def templates(
        self,
        manifest: ActionManifest,
        ref: ActionRef,
        resolved: ResolvedAction,
        step: tuple[str, str],
        env: dict[str, str],
        loc: Loc,
    ) -> ActionManifest:
        """The manifest with DataTorch's namespaces rendered (:mod:`datatorch_templates`)."""
        directory = shown_path(resolved.directory, self.base)
        try:
            return templates.render_manifest(manifest, ref.tag, directory, step, env)
        except ValueError as exc:
            raise self.source.error(loc, f"action {ref}: {exc}") from None

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
        check_keys(action, self.source, loc, {"name", "tag", "git", "file"}, {}, "an action")
        for key in ("name", "tag"):
            if not action.get(key):
                raise self.source.error(loc, f"an action object needs `{key}`")
        git = str(action["git"]) if action.get("git") else None
        name = str(action["name"])
        ref = ActionRef(name, str(action["tag"]), git, library_url(name))
        if action.get("file"):  # the manifest's name in the action's directory
            manifest = str(action["file"])
            if "/" in manifest or manifest.startswith("."):
                raise self.source.error((*loc, "file"), f"file {manifest!r} must be a file name")
            self.files[ref] = manifest
        return ref

    def render(self, value: Any, earlier: dict[str, dict[str, Any]], loc: Loc) -> Any:
        """References as DataTorch resolves them before a step runs: an earlier step's
        output (by name or id) stays a reference for the runner, a trigger input becomes
        the run parameter of that name; a whole-string reference keeps its type."""
        if not isinstance(value, str) or not has_expression(value):
            return value

        def lookup(expr: str) -> str:
            step_ref = _STEP_REF.match(expr)
            if step_ref:
                name, key = step_ref.group("step").strip(), step_ref.group("key")
                if name not in earlier:
                    known = ", ".join(sorted(earlier)) or "none"
                    raise self.source.error(
                        loc, f"steps.{name} is not an earlier step of this job (earlier: {known})"
                    )
                target = earlier[name]
                outputs = target["action"]["outputs"]
                if key not in outputs:  # printed but not declared: usable as DataTorch has it
                    outputs.append(key)
                return step_output(target["id"], key)
            if templates.is_trigger_reference(expr):  # the plan reads the run's trigger
                return f"${{{{ {expr} }}}}"
            variable = _VARIABLE_REF.match(expr)
            if variable:
                return self.variable(variable.group("key"), earlier, loc)
            input_ref = _INPUT_REF.match(expr)
            if input_ref:
                self.params.add(input_ref.group("key"))
                return f"${{{{ params.{input_ref.group('key')} }}}}"
            raise self.source.error(
                loc,
                f"${{{{ {expr} }}}} is not supported; use ${{{{ input.NAME }}}} (a trigger "
                "input), ${{ steps.NAME.outputs.KEY }}, ${{ event.FIELD }} (the trigger's "
                "payload) or ${{ pipeline.KEY }}",
            )

        return EXPRESSION.sub(lambda m: lookup(m.group(1)), value)

    def variable(self, key: str, earlier: dict[str, dict[str, Any]], loc: Loc) -> str:
        """``${{ variable.KEY }}``: output KEY of the latest earlier step that declares
        it, else of the step just before (which may print it undeclared, as
        download-file prints ``path``)."""
        steps = list({id(s): s for s in earlier.values()}.values())
        if not steps:
            raise self.source.error(
                loc, f"${{{{ variable.{key} }}}} reads an earlier step's output; none is earlier"
            )
        declaring = [s for s in steps if key in s["action"]["outputs"]]
        target = (declaring or steps)[-1]
        if key not in target["action"]["outputs"]:
            target["action"]["outputs"].append(key)
        return step_output(target["id"], key)

    def coerce(self, key: str, value: Any, kind: str | None, loc: Loc) -> Any:
        """A literal as DataTorch casts it to the declared type (``"3"`` -> 3, and
        ``"false"`` -> true as Python's ``bool``); references are cast at launch."""
        if value is None or (isinstance(value, str) and has_expression(value)):
            return value
        try:
            return datatorch_rules.cast(kind, value)
        except ValueError as exc:
            raise self.source.error(loc, f"input {key!r} is {kind}: {exc}") from None
