"""Dependencies between steps: declared (job and step ``needs``), inferred from paths,
and the selection of ``--only``. Pure, like the rest of the compiler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from conveyor.errors import ParamError
from conveyor.plan import graph
from conveyor.plan.model import StepPlan
from conveyor.spec.model import JobSpec, PipelineSpec
from conveyor.spec.yamlsource import Loc, SourceMap


def declared_needs(
    spec: PipelineSpec, instances: Mapping[str, list[list[str]]], source: SourceMap
) -> dict[str, set[str]]:
    """Steps of a job run in order, unless steps name the ones they wait for (``needs``);
    a job's first steps wait for the ends of the jobs it needs."""
    ends = {job_id: _ends(job, instances[job_id]) for job_id, job in spec.jobs.items()}
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
        for ids in instances[job_id]:
            _job_needs(job_id, job, ids, upstream, needs, source)
    return needs


def _job_needs(
    job_id: str,
    job: JobSpec,
    ids: list[str],
    upstream: set[str],
    needs: dict[str, set[str]],
    source: SourceMap,
) -> None:
    prefix = ids[0].rpartition(".")[0] if ids else job_id
    short = {step_id.rpartition(".")[2] for step_id in ids}
    previous = upstream
    for index, (step, step_id) in enumerate(zip(job.steps, ids, strict=True)):
        if step.needs is None:
            needs[step_id] = set(previous)
        else:
            for k, name in enumerate(step.needs):
                if name not in short:
                    raise source.error(
                        ("jobs", job_id, "steps", index, "needs", k),
                        f"step {step_id} needs {name!r}, which is not a step of job "
                        f"{job_id!r} (steps: {', '.join(sorted(short))})",
                    )
            mine = {f"{prefix}.{name}" for name in step.needs}
            needs[step_id] = mine or set(upstream)
        previous = {step_id}


def _ends(job: JobSpec, instances: list[list[str]]) -> set[str]:
    """What a job that needs this one waits for: its last step, or (when steps name
    their own needs) every step that no other step of the job waits for."""
    if all(step.needs is None for step in job.steps):
        return {ids[-1] for ids in instances}
    ends: set[str] = set()
    for ids in instances:
        prefix = ids[0].rpartition(".")[0]
        needed = {f"{prefix}.{n}" for step in job.steps for n in (step.needs or ())}
        for index, step_id in enumerate(ids):
            follower = index + 1 < len(ids) and job.steps[index + 1].needs is None
            if step_id not in needed and not follower:
                ends.add(step_id)
    return ends


def infer_needs(
    steps: Mapping[str, StepPlan],
    instances: Mapping[str, list[list[str]]],
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
    position = {sid: n for ids in instances.values() for inst in ids for n, sid in enumerate(inst)}
    index = graph.PathIndex(writers)
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
    instances: Mapping[str, list[list[str]]],
    needs: Mapping[str, set[str]],
) -> set[str]:
    chosen: set[str] = set()
    for name in selection:
        if name in steps:
            chosen.add(name)
        elif name in instances:
            chosen.update(s for ids in instances[name] for s in ids)
        else:
            matches = [s for s, p in steps.items() if p.job == name or s.endswith("." + name)]
            if not matches:
                raise ParamError(
                    f"--only {name!r} names no step or job (steps look like job.step; "
                    "`conveyor plan` lists them)"
                )
            chosen.update(matches)
    return graph.upstream_closure(chosen, needs)


def with_needs(step: StepPlan, needs: set[str]) -> StepPlan:
    return replace(step, needs=tuple(sorted(needs)))
