"""What a deployment serves of its pipeline: the ``python:`` step (module:function), and
where an elastic run writes that function's return value."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.errors import UsageError
from conveyor.plan.compile import default_step_id
from conveyor.spec.model import PipelineSpec


@dataclass(frozen=True)
class PythonTarget:
    function: str
    """``package.module:function``."""
    result: str | None
    """The project path of its JSON result in a run (None: the path is a template)."""


def python_target(spec: PipelineSpec) -> PythonTarget | None:
    """The pipeline's one ``python:`` step, or None when it has none (or several)."""
    found = [
        (job_id, index, step)
        for job_id, job in spec.jobs.items()
        for index, step in enumerate(job.steps)
        if step.python is not None
    ]
    if len(found) != 1:
        return None
    job_id, index, step = found[0]
    assert step.python is not None
    if step.result:
        result = None if "${{" in step.result else step.result
    else:
        result = f"results/{job_id}/{step.id or default_step_id(step, index)}.json"
    return PythonTarget(step.python, result)


def require_python(spec: PipelineSpec) -> PythonTarget:
    target = python_target(spec)
    if target is None:
        raise UsageError(
            "a low_latency deployment serves a pipeline of one `python: module:function` "
            "step; this pipeline has none or several: deploy it in elastic mode"
        )
    return target
