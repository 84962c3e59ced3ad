"""Dependencies between steps: declared (job and step ``needs``), inferred from paths,
and the selection of ``--only``. Pure, like the rest of the compiler."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.errors import ParamError
from conveyor.plan import graph
from conveyor.plan.model import StepPlan
from conveyor.spec.yamlsource import Loc, SourceMap

if TYPE_CHECKING:  # annotations only: a plain-read spec compiles without pydantic
    from conveyor.spec.model import JobSpec, PipelineSpec

# job -> its instances -> their stages (one per declared step) -> step ids; a stage
# holds several ids when the step fans out over datums
Instances = Mapping[str, list[list[list[str]]]]


def declared_needs(
    spec: PipelineSpec, instances: Instances, bases: Mapping[str, str], source: SourceMap
) -> dict[str, set[str]]:
    """Steps of a job run in order, unless steps name the ones they wait for (``needs``);
    a job's first steps wait for the ends of the jobs it needs. ``bases`` maps a datum
    instance's id to its step's id."""
    ends = {job_id: _ends(job, instances[job_id], bases) for job_id, job in spec.jobs.items()}
    needs: dict[str, set[str]] = {}
    for job_id, job in spec.jobs.items():
        upstream: set[str] = set()
        for i, name in enumerate(job.needs):
            if name not in spec.jobs:
                known = ", ".join(sorted(spec.jobs))
                raise source.error(
                    ("jobs", job_id, "needs", i),
                    f"job {job_id!r} needs {name!r}, which is not a job (jobs: {known})",
                )
            upstream.update(ends[name])
        for stages in instances[job_id]:
            _job_needs(job_id, job, stages, bases, upstream, needs, source)
    return needs


def _names(stages: list[list[str]], bases: Mapping[str, str]) -> list[str]:
    """The short name of each stage's step (``train`` of ``fit[lr=0.1].train[a.csv]``)."""
    return [bases.get(stage[0], stage[0]).rpartition(".")[2] for stage in stages]


def _job_needs(
    job_id: str,
    job: JobSpec,
    stages: list[list[str]],
    bases: Mapping[str, str],
    upstream: set[str],
    needs: dict[str, set[str]],
    source: SourceMap,
) -> None:
    names = _names(stages, bases)
    by_name = dict(zip(names, stages, strict=True))
    previous = upstream
    for index, (step, stage) in enumerate(zip(job.steps, stages, strict=True)):
        if step.needs is None:
            mine = set(previous)
        else:
            for k, name in enumerate(step.needs):
                if name not in by_name:
                    raise source.error(
                        ("jobs", job_id, "steps", index, "needs", k),
                        f"step {stage[0]} needs {name!r}, which is not a step of job "
                        f"{job_id!r} (steps: {', '.join(sorted(by_name))})",
                    )
            mine = {s for name in step.needs for s in by_name[name]} or set(upstream)
        for step_id in stage:
            needs[step_id] = set(mine)
        previous = set(stage)


def _ends(job: JobSpec, instances: list[list[list[str]]], bases: Mapping[str, str]) -> set[str]:
    """What a job that needs this one waits for: its last step, or (when steps name
    their own needs) every step that no other step of the job waits for."""
    if all(step.needs is None for step in job.steps):
        return {s for stages in instances for s in stages[-1]}
    needed = {n for step in job.steps for n in (step.needs or ())}
    ends: set[str] = set()
    for stages in instances:
        for index, name in enumerate(_names(stages, bases)):
            follower = index + 1 < len(stages) and job.steps[index + 1].needs is None
            if name not in needed and not follower:
                ends.update(stages[index])
    return ends


def infer_needs(
    steps: Mapping[str, StepPlan],
    instances: Instances,
    needs: dict[str, set[str]],
    locs: Mapping[str, Loc],
    source: SourceMap,
) -> list[tuple[str, str, str]]:
    """Order a step after any step of another job that writes what it reads."""
    writers: dict[str, str] = {}
    for step_id, step in steps.items():
        for i, out in enumerate(step.outputs):
            other = writers.get(out)
            if other is not None:
                raise source.error(
                    (*locs[step_id], "outputs", i),
                    f"steps {other} and {step_id} both write {out!r}; give each its own output",
                )
            writers[out] = step_id
    index = graph.PathIndex(writers)
    _refuse_nested_outputs(steps, index, locs, source)
    position = {
        sid: n
        for stages_of_job in instances.values()
        for stages in stages_of_job
        for n, stage in enumerate(stages)
        for sid in stage
    }
    inferred: list[tuple[str, str, str]] = []
    for step_id, step in steps.items():
        for pattern in step.inputs:
            for out, writer in index.overlapping(pattern):
                if writer == step_id:
                    continue
                producer = steps[writer]
                if producer.job == step.job:
                    if position[writer] > position[step_id]:
                        raise source.error(
                            locs[step_id],
                            f"step {step_id} reads {out!r}, which the later step {writer} "
                            "of the same job writes; move it after that step",
                        )
                    continue
                if writer not in needs[step_id]:
                    needs[step_id].add(writer)
                    inferred.append((step_id, writer, out))
    return inferred


def select(
    selection: Sequence[str],
    steps: Mapping[str, StepPlan],
    instances: Instances,
    needs: Mapping[str, set[str]],
    bases: Mapping[str, str],
) -> set[str]:
    chosen: set[str] = set()
    for name in selection:
        if name in steps:
            chosen.add(name)
        elif name in instances:
            chosen.update(s for stages in instances[name] for stage in stages for s in stage)
        else:
            matches = [
                s
                for s, p in steps.items()
                if p.job == name or (base := bases.get(s, s)) == name or base.endswith("." + name)
            ]
            if not matches:
                raise ParamError(
                    f"--only {name!r} names no step or job (steps look like job.step; "
                    "`conveyor plan` lists them)"
                )
            chosen.update(matches)
    return graph.upstream_closure(chosen, needs)


def with_needs(step: StepPlan, needs: set[str]) -> StepPlan:
    ordered = tuple(sorted(needs))
    if ordered == step.needs:
        return step
    # a copy with one field set: replace() would run __init__ over all of them (1000s of steps)
    clone = copy.copy(step)
    object.__setattr__(clone, "needs", ordered)
    return clone


def _refuse_nested_outputs(
    steps: Mapping[str, StepPlan],
    index: graph.PathIndex,
    locs: Mapping[str, Loc],
    source: SourceMap,
) -> None:
    """One step's output inside another's (``o`` and ``o/y``): storing, restoring and
    clearing either would take or destroy the other's files."""
    order = {step_id: n for n, step_id in enumerate(steps)}
    for step_id, step in steps.items():
        for out in step.outputs:
            for other, writer in index.overlapping(out):
                if writer == step_id or other == out:
                    continue
                first, later, path = step_id, writer, other  # report at the later step
                if order[writer] < order[step_id]:
                    first, later, path = writer, step_id, out
                outer, inner = sorted((out, other), key=len)
                raise source.error(
                    (*locs[later], "outputs", steps[later].outputs.index(path)),
                    f"steps {first} and {later} write overlapping outputs: {inner!r} is "
                    f"inside {outer!r}; give each step its own output path",
                )
