"""spec + params + selection -> ExecutionPlan. Pure: no I/O, deterministic."""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conveyor.domain.conditions import Condition, TriggerContext
from conveyor.domain.types import ParamValue
from conveyor.errors import ParamError
from conveyor.plan import actions, depends, graph
from conveyor.plan.datums import (
    Datum,
    Lister,
    Renderer,
    StepContext,
    default_result,
    module_files,
    python_command,
    step_datums,
)
from conveyor.plan.model import ExecutionPlan, ServicePlan, StepPlan
from conveyor.plan.notebooks import (
    default_notebook_result,
    html_path,
    notebook_command,
    notebook_parameters,
)
from conveyor.spec import validate
from conveyor.spec.expressions import STEP_OUTPUT, has_expression, value_text, whole_expression
from conveyor.spec.params import check_params, param_default
from conveyor.spec.patterns import is_glob
from conveyor.spec.yamlsource import Loc, SourceMap

if TYPE_CHECKING:  # annotations only: a plain-read spec compiles without pydantic
    from conveyor.spec.model import JobSpec, PipelineSpec, StepSpec, When

_STEP_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
# a whole-string input reading the trigger keeps the value's type (as DataTorch's does)
_TYPED = ("event.", "pipeline.")


# job -> its instances -> their stages (one per declared step) -> step ids; a stage
# holds one step, or one per datum of a step with ``datums``
Instances = dict[str, list[list[list[str]]]]


def _no_files(pattern: str) -> Sequence[str]:
    return ()


def compile_plan(
    spec: PipelineSpec,
    params: Mapping[str, ParamValue] | None = None,
    selection: Sequence[str] = (),
    lister: Lister = _no_files,
    trigger: TriggerContext | None = None,
) -> ExecutionPlan:
    """Resolve params, matrices, datums and templates; order steps; apply ``selection``.

    ``lister`` names the project files a ``datums`` glob matches (and finds the module
    file of a ``python:`` step); ``trigger`` gives ``${{ event.* }}`` and
    ``${{ pipeline.* }}``; the plan depends on nothing else outside ``spec``."""
    source = spec.source
    values = _resolve_params(spec, params or {})
    given = trigger or TriggerContext()
    trigger = TriggerContext(given.event, {"name": spec.name, **given.pipeline})
    steps: dict[str, StepPlan] = {}
    instances: Instances = {}
    locs: dict[str, Loc] = {}
    bases: dict[str, str] = {}  # datum instance id -> the step's id without the datum
    for job_id, job in spec.jobs.items():
        instances[job_id] = []
        for matrix in _expand_matrix(job, ("jobs", job_id), source):
            instance = _instance_id(job_id, matrix)
            context = StepContext(spec, job_id, job, instance, matrix, values, trigger)
            stages = []
            for index, step in enumerate(job.steps):
                loc: Loc = ("jobs", job_id, "steps", index)
                stage = []
                for datum in step_datums(context, step, loc, lister):
                    plan = _compile_step(context, step, index, datum, loc, lister)
                    if plan.id in steps:
                        raise source.error(
                            (*loc, "id"),
                            f"duplicate step id {plan.id.rpartition('.')[2]!r} in job {job_id!r}",
                        )
                    steps[plan.id] = plan
                    locs[plan.id] = loc
                    stage.append(plan.id)
                    if datum is not None:
                        bases[plan.id] = plan.id.removesuffix(f"[{datum.name}]")
                stages.append(stage)
            instances[job_id].append(stages)

    needs = depends.declared_needs(spec, instances, bases, source)
    inferred = depends.infer_needs(steps, instances, needs, locs, source)
    order = list(steps)
    try:
        ordered = graph.topological_order(order, needs)
    except graph.CycleError as exc:
        first_job = steps[exc.cycle[0]].job
        raise source.error(
            ("jobs", first_job), f"the pipeline has a cycle: {' -> '.join(exc.cycle)}"
        ) from None
    keep = depends.select(selection, steps, instances, needs, bases) if selection else set(order)
    final = tuple(depends.with_needs(steps[s], needs[s] & keep) for s in ordered if s in keep)
    jobs = {step.job for step in final}
    return ExecutionPlan(
        pipeline=spec.name,
        params=tuple(sorted(values.items())),
        steps=final,
        inferred=tuple(i for i in inferred if i[0] in keep and i[1] in keep),
        services=_services(spec, jobs),
        datasets=tuple(sorted(spec.datasets.items())),
        concurrency=min(
            (j.concurrency for i, j in spec.jobs.items() if j.concurrency and i in jobs),
            default=None,
        ),
    )


def _services(spec: PipelineSpec, jobs: set[str]) -> tuple[ServicePlan, ...]:
    """The services of ``jobs`` (those with a step in the plan): one network of names for
    the run, so a name may be given once."""
    services: dict[str, ServicePlan] = {}
    for job_id, job in spec.jobs.items():
        if job_id not in jobs:
            continue
        ci = next((step.ci for step in job.steps if step.ci), None)
        for index, service in enumerate(job.services):
            if service.name in services:
                raise spec.source.error(
                    ("jobs", job_id, "services", index, "name"),
                    f"two services of the run are named {service.name!r} (jobs "
                    f"{services[service.name].job} and {job_id}); a run's services share "
                    "one set of names",
                )
            services[service.name] = ServicePlan(
                name=service.name,
                job=job_id,
                image=service.image,
                command=service.run or "",
                env=tuple((k, value_text(v)) for k, v in sorted(service.env.items())),
                pull=service.pull,
                ci=ci,
            )
    return tuple(services.values())


def _resolve_params(spec: PipelineSpec, given: Mapping[str, ParamValue]) -> dict[str, Any]:
    checked = check_params(spec, given)
    values: dict[str, Any] = {}
    for name, declared in spec.params.items():
        if name in checked:
            values[name] = checked[name]
        elif declared.default is not None:
            values[name] = param_default(spec.source, name, declared)
        else:
            raise ParamError(f"parameter {name!r} has no default; pass --param {name}=VALUE")
    return values


def _expand_matrix(job: JobSpec, loc: Loc, source: SourceMap) -> list[dict[str, Any]]:
    if job.matrix is None:
        return [{}]
    axes = validate.matrix_axes(job.matrix, source, loc)
    combos = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    if not axes:
        combos = []
    for entry in job.matrix.get("exclude", []):
        combos = [c for c in combos if any(c.get(k) != v for k, v in entry.items())]
    combos += [dict(entry) for entry in job.matrix.get("include", [])]
    if not combos:
        raise source.error((*loc, "matrix"), "the matrix expands to no job instance")
    return combos


def _instance_id(job_id: str, matrix: Mapping[str, Any]) -> str:
    if not matrix:
        return job_id
    return f"{job_id}[{','.join(f'{k}={v}' for k, v in matrix.items())}]"


def _compile_step(
    context: StepContext, step: StepSpec, index: int, datum: Datum | None, loc: Loc, lister: Lister
) -> StepPlan:
    spec, job, values = context.spec, context.job, context.values
    source = spec.source
    text = Renderer(context, datum)
    step_name = step.id or default_step_id(step, index)
    step_id = f"{context.instance}.{step_name}"
    env = {**spec.env, **job.env, **step.env}
    rendered = {k: text(value_text(v), (*loc, "env", k)) for k, v in env.items()}
    inputs, optional, unkeyed = _inputs(step, text, loc)
    outputs = [
        _output_path(text(p, (*loc, "outputs", i)), source, (*loc, "outputs", i))
        for i, p in enumerate(step.outputs)
    ]
    metrics = [
        _output_path(text(p, (*loc, "metrics", i)), source, (*loc, "metrics", i))
        for i, p in enumerate(step.metrics)
    ]
    outputs += [m for m in metrics if m not in outputs]  # a metrics file is an output too
    notebook = None
    if datum is not None:
        step_id += f"[{datum.name}]"
        rendered["CONVEYOR_DATUM"] = datum.path
    if step.python is not None:
        where: Loc = (*loc, "result") if step.result else loc
        raw = text(step.result, where) if step.result else default_result(context, step_name, datum)
        result = _output_path(raw, source, where)
        command = python_command(step.python, result, datum)
        outputs.insert(0, result)
        inputs = module_files(step.python, lister) + inputs
    elif step.notebook is not None:
        notebook = _notebook_path(
            text(step.notebook, (*loc, "notebook")), source, (*loc, "notebook")
        )
        where = (*loc, "result") if step.result else loc
        raw = (
            text(step.result, where)
            if step.result
            else default_notebook_result(context, step_name, datum)
        )
        result = _output_path(raw, source, where)
        values = notebook_parameters(step.parameters, text, loc)
        command = notebook_command(notebook, result, values)
        outputs[:0] = [result, html_path(result)]
        inputs.insert(0, notebook)
    else:
        command = text(step.run, (*loc, "run"), shell=True) if step.run else ""
    if datum is not None:
        inputs.insert(0, datum.path)
    action = _action_fields(job, index, source, loc, text)  # before text.used is read
    return StepPlan(
        id=step_id,
        job=context.instance,
        name=text(step.name, (*loc, "name")) if step.name else step_name,
        command=command,
        env=tuple(sorted(rendered.items())),
        policy=validate.run_policy(step.if_, source, (*loc, "if")),
        timeout=step.timeout,
        queue_timeout=step.queue_timeout,
        retries=step.retries,
        inputs=tuple(dict.fromkeys(inputs)),
        optional_inputs=tuple(dict.fromkeys(optional)),
        unkeyed_inputs=tuple(dict.fromkeys(unkeyed)),
        outputs=tuple(outputs),
        metrics=tuple(dict.fromkeys(metrics)),
        cache=step.cache,
        params=tuple(sorted((name, values[name]) for name in text.used)),
        matrix=tuple(context.matrix.items()),
        resources=validate.resources(
            step.resources or job.resources,
            source,
            (*loc, "resources") if step.resources else ("jobs", context.job_id, "resources"),
        ),
        executor=job.runs_on,
        options=job.executor_options(),
        image=text(step.image, (*loc, "image")) if step.image else None,
        pull=step.pull,
        secrets=tuple(sorted(step.secrets.items())),
        status_env=tuple(step.status_env),
        allow_failure=step.continue_on_error,
        volumes=tuple((v.name, v.path) for v in step.volumes if v.host is None),
        host_volumes=tuple((v.host, v.path) for v in step.volumes if v.host is not None),
        privileged=step.privileged,
        ci=step.ci,
        notebook=notebook,
        conditions=(*_conditions("job", job.when), *_conditions("step", step.when)),
        **action,
    )


def _conditions(scope: str, when: When) -> tuple[Condition, ...]:
    out = []
    for key, value in when.items():
        if isinstance(value, str | list):
            out.append(Condition(scope, key, (value,) if isinstance(value, str) else tuple(value)))
        else:  # a ConditionFilterSpec: {include: [...], exclude: [...]}
            out.append(Condition(scope, key, tuple(value.include), tuple(value.exclude)))
    return tuple(out)


def _inputs(step: StepSpec, text: Renderer, loc: Loc) -> tuple[list[str], list[str], list[str]]:
    """The step's input paths, those of them that may be missing (``optional``) and
    those left out of its cache key (``keyed: false``)."""
    inputs, optional, unkeyed = [], [], []
    for i, entry in enumerate(step.inputs):
        where: Loc = (*loc, "inputs", i)
        if isinstance(entry, str):
            inputs.append(graph.normalize(text(entry, where)))
            continue
        path = graph.normalize(text(entry.path, (*where, "path")))
        inputs.append(path)
        if entry.optional:
            optional.append(path)
        if not entry.keyed:
            unkeyed.append(path)
    return inputs, optional, unkeyed


def _action_fields(
    job: JobSpec, index: int, source: SourceMap, loc: Loc, text: Renderer
) -> dict[str, Any]:
    action = job.steps[index].action
    if action is None:
        return {}
    ids = [step.id or default_step_id(step, i) for i, step in enumerate(job.steps)]
    actions.check_references(job, index, ids, source, loc)
    inputs = {
        key: _render_input(value, text, (*loc, "action", "inputs", key))
        for key, value in action.inputs.items()
    }
    return {
        "action": action.ref,
        "action_commit": action.commit,
        "action_inputs": tuple(inputs.items()),
        "action_outputs": tuple(action.outputs),
        "action_rules": action.rules,
        "action_types": tuple(action.types.items()),
    }


def _render_input(value: Any, text: Renderer, where: Loc) -> Any:
    """``${{ params.* }}``, ``${{ matrix.* }}`` and ``${{ datum.* }}`` in a string input,
    rendered now (sandboxed); ``${{ steps.ID.outputs.KEY }}`` stays for the runner."""
    if not isinstance(value, str) or not has_expression(value):
        return value
    whole = whole_expression(value)
    if whole is not None and whole.startswith(_TYPED):  # a payload's list stays a list
        return text.value(whole, where)
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"__conveyor_output_{len(kept) - 1}__"

    protected = STEP_OUTPUT.sub(keep, value)
    if not has_expression(protected):
        return value
    rendered = text(protected, where)
    for number, reference in enumerate(kept):
        rendered = rendered.replace(f"__conveyor_output_{number}__", reference)
    return rendered


def default_step_id(step: StepSpec, index: int) -> str:
    if step.name:
        slug = _STEP_SLUG.sub("-", step.name.strip().lower()).strip("-")
        if slug and not has_expression(step.name):
            return slug[:60]
    return f"step-{index + 1}"


def _notebook_path(path: str, source: SourceMap, loc: Loc) -> str:
    normal = graph.normalize(path)
    if posixpath.isabs(normal) or normal.startswith("../") or is_glob(normal):
        raise source.error(
            loc, f"notebook {path!r} must be one project-relative .ipynb file (no glob)"
        )
    return normal


def _output_path(path: str, source: SourceMap, loc: Loc) -> str:
    normal = graph.normalize(path)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise source.error(
            loc, f"output {path!r} is outside the project; outputs are project-relative paths"
        )
    if normal == ".":
        raise source.error(loc, "an output cannot be the whole project directory")
    if is_glob(normal):
        raise source.error(
            loc, f"output {path!r} is a glob; name the files or directory the step writes"
        )
    if normal.split("/", 1)[0] in (".conveyor", ".git"):
        raise source.error(loc, f"output {path!r} is inside Conveyor's or git's own directory")
    return normal
