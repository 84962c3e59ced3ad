"""The compiled plan: frozen, ordered, printable (``conveyor plan --json``).

Its JSON shape is declared on the fields (:mod:`conveyor.domain.jsonshape`): fields of
foreign formats are printed only when set, so native plans read as they always did."""

from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.conditions import Condition
from conveyor.domain.jsonshape import JsonShape, shape
from conveyor.domain.types import FieldValues, Policy, Resources

__all__ = ["ExecutionPlan", "Policy", "ServicePlan", "StepPlan"]

_SET = shape(omit=True)  # printed only when set


def _action(key: str) -> dict[str, Any]:
    return shape(key=key, group="action")


@dataclass(frozen=True, eq=False, repr=False)  # FieldValues: 3 methods not generated
class StepPlan(JsonShape, FieldValues):
    """One step as it will run: all templates resolved, dependencies explicit."""

    id: str
    job: str
    name: str
    command: str
    env: tuple[tuple[str, str], ...] = ()
    policy: Policy = field(default="success", metadata=shape(key="if", suffix="()"))
    timeout: float | None = None
    """Seconds from the moment the step starts running."""
    queue_timeout: float | None = field(
        default=None, metadata=shape(key="queue-timeout", omit=True)
    )
    """Seconds the step may wait at its executor before it starts running."""
    retries: int = 0
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = field(default=(), metadata=_SET)
    """Inputs that may match nothing (``optional: true``); the others must exist."""
    unkeyed_inputs: tuple[str, ...] = field(default=(), metadata=_SET)
    """Inputs brought to the step but left out of its cache key (``keyed: false``)."""
    outputs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = field(default=(), metadata=_SET)
    """Outputs that are metrics files (``conveyor metrics show`` reads them)."""
    cache: bool = True
    needs: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    matrix: tuple[tuple[str, Any], ...] = ()
    resources: Resources = field(default_factory=Resources)
    executor: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    """Executor-specific extras from the job (e.g. its ``htcondor:`` table)."""
    image: str | None = field(default=None, metadata=_SET)
    """A container image the step asks for (part of its fingerprint)."""
    pull: str | None = field(default=None, metadata=_SET)
    secrets: tuple[tuple[str, str], ...] = field(default=(), metadata=_SET)
    """(environment variable, secret name): values are read at launch, never stored."""
    status_env: tuple[str, ...] = field(default=(), metadata=_SET)
    """Variables set at launch to the run status so far: ``success`` or ``failure``."""
    allow_failure: bool = field(default=False, metadata=_SET)
    """A failure of this step neither fails the run nor taints its dependents."""
    volumes: tuple[tuple[str, str], ...] = field(
        default=(), metadata=shape(omit=True, rows=("name", "path"))
    )
    """(name, path): the job's temporary directories of the run mounted in the container."""
    host_volumes: tuple[tuple[str, str], ...] = field(
        default=(), metadata=shape(key="host-volumes", omit=True, rows=("host", "path"))
    )
    """(directory of the machine, path): checked at launch against the project's settings."""
    privileged: bool = field(default=False, metadata=_SET)
    """A privileged container: refused at launch unless the project allows it."""
    ci: str | None = field(default=None, metadata=_SET)
    """``drone`` or ``dotscience``: that system's variables and ``${VAR}`` substitution."""
    notebook: str | None = field(default=None, metadata=_SET)
    """A notebook step's ``.ipynb`` (an input too): its code cells, not its bytes, key it."""
    conditions: tuple[Condition, ...] = field(default=(), metadata=_SET)
    """The job's then the step's ``when``: checked against the run's facts before launch."""
    action: str | None = field(default=None, metadata=_action("ref"))
    """The action the step runs (as named: ``owner/name@tag``, ``./path``)."""
    action_commit: str | None = field(default=None, metadata=_action("commit"))
    action_inputs: tuple[tuple[str, Any], ...] = field(default=(), metadata=_action("inputs"))
    """Input values; strings may hold ``${{ steps.ID.outputs.KEY }}``, resolved at launch."""
    action_outputs: tuple[str, ...] = field(default=(), metadata=_action("outputs"))
    action_rules: str | None = field(
        default=None, metadata=shape(key="rules", group="action", omit=True)
    )
    """``datatorch``: DataTorch's casts and output lines (:mod:`conveyor.spec.datatorch_rules`)."""
    action_types: tuple[tuple[str, str], ...] = field(
        default=(), metadata=shape(key="types", group="action", omit=True)
    )


@dataclass(frozen=True)
class ServicePlan(JsonShape):
    """A job's service: started before the run's steps, stopped at its end."""

    name: str
    job: str
    image: str | None = None
    command: str = ""
    """Shell text (``sh -e -c``); empty: the image's own entrypoint."""
    env: tuple[tuple[str, str], ...] = ()
    pull: str | None = None
    ci: str | None = None
    """``drone``: a short image name is Docker Hub's, as Drone reads it."""


@dataclass(frozen=True)
class ExecutionPlan(JsonShape):
    """Steps in a topological order (ties broken by declaration order)."""

    pipeline: str
    params: tuple[tuple[str, Any], ...]
    steps: tuple[StepPlan, ...]
    inferred: tuple[tuple[str, str, str], ...] = field(
        default=(), metadata=shape(key="inferred_needs", rows=("step", "needs", "path"))
    )
    """Orderings Conveyor added: (consumer step, producer step, path)."""
    services: tuple[ServicePlan, ...] = field(default=(), metadata=_SET)
    """The services of the jobs that have a step in the plan (names unique in the run)."""
    concurrency: int | None = field(default=None, metadata=_SET)
    """On a server, at most this many runs of the pipeline at once (the smallest limit of
    the jobs that have a step in the plan)."""
    datasets: tuple[tuple[str, str], ...] = field(default=(), metadata=_SET)
    """Workspace path -> dataset ref (``NAME@REF[:/PATH]``) checked out before the run."""

    def step(self, step_id: str) -> StepPlan:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
