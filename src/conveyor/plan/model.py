"""The compiled plan: frozen, ordered, printable (``conveyor plan --json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.domain.types import Resources

Policy = Literal["success", "failure", "always"]


@dataclass(frozen=True)
class StepPlan:
    """One step as it will run: all templates resolved, dependencies explicit."""

    id: str
    job: str
    name: str
    command: str
    env: tuple[tuple[str, str], ...] = ()
    policy: Policy = "success"
    timeout: float | None = None
    retries: int = 0
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    """Inputs that may match nothing (``optional: true``); the others must exist."""
    outputs: tuple[str, ...] = ()
    cache: bool = True
    needs: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    matrix: tuple[tuple[str, Any], ...] = ()
    resources: Resources = field(default_factory=Resources)
    executor: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    """Executor-specific extras from the job (e.g. its ``htcondor:`` table)."""
    image: str | None = None
    """A container image the step asks for (part of its fingerprint)."""
    pull: str | None = None
    secrets: tuple[tuple[str, str], ...] = ()
    """(environment variable, secret name): values are read at launch, never stored."""
    status_env: tuple[str, ...] = ()
    """Variables set at launch to the run status so far: ``success`` or ``failure``."""
    allow_failure: bool = False
    """A failure of this step neither fails the run nor taints its dependents."""
    action: str | None = None
    """The action the step runs (as named: ``owner/name@tag``, ``./path``)."""
    action_commit: str | None = None
    action_inputs: tuple[tuple[str, Any], ...] = ()
    """Input values; strings may hold ``${{ steps.ID.outputs.KEY }}``, resolved at launch."""
    action_outputs: tuple[str, ...] = ()

    @staticmethod
    def from_json(data: dict[str, Any]) -> StepPlan:
        res = data["resources"]
        return StepPlan(
            id=data["id"],
            job=data["job"],
            name=data["name"],
            command=data["command"],
            env=tuple(data["env"].items()),
            policy=data["if"].removesuffix("()"),
            timeout=data["timeout"],
            retries=data["retries"],
            inputs=tuple(data["inputs"]),
            optional_inputs=tuple(data.get("optional_inputs", ())),
            outputs=tuple(data["outputs"]),
            cache=data["cache"],
            needs=tuple(data["needs"]),
            params=tuple(data["params"].items()),
            matrix=tuple(data["matrix"].items()),
            resources=Resources(res["cpus"], res["memory_mb"], res["gpus"], res["disk_mb"]),
            executor=data["executor"],
            options=tuple(data.get("options", {}).items()),
            image=data.get("image"),
            pull=data.get("pull"),
            secrets=tuple(data.get("secrets", {}).items()),
            status_env=tuple(data.get("status_env", ())),
            allow_failure=bool(data.get("allow_failure", False)),
            **_action_from_json(data.get("action")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "name": self.name,
            "command": self.command,
            "env": dict(self.env),
            "if": f"{self.policy}()",
            "timeout": self.timeout,
            "retries": self.retries,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "cache": self.cache,
            "needs": list(self.needs),
            "params": dict(self.params),
            "matrix": dict(self.matrix),
            "resources": {
                "cpus": self.resources.cpus,
                "memory_mb": self.resources.memory_mb,
                "gpus": self.resources.gpus,
                "disk_mb": self.resources.disk_mb,
            },
            "executor": self.executor,
            "options": dict(self.options),
            **self._optional_json(),
        }

    def _optional_json(self) -> dict[str, Any]:
        """Fields of foreign formats, printed only when set (native plans stay as they were)."""
        out: dict[str, Any] = {}
        if self.optional_inputs:
            out["optional_inputs"] = list(self.optional_inputs)
        if self.image is not None:
            out["image"] = self.image
        if self.pull is not None:
            out["pull"] = self.pull
        if self.secrets:
            out["secrets"] = dict(self.secrets)
        if self.status_env:
            out["status_env"] = list(self.status_env)
        if self.allow_failure:
            out["allow_failure"] = True
        if self.action is not None:
            out["action"] = {
                "ref": self.action,
                "commit": self.action_commit,
                "inputs": dict(self.action_inputs),
                "outputs": list(self.action_outputs),
            }
        return out


def _action_from_json(data: dict[str, Any] | None) -> dict[str, Any]:
    if not data:
        return {}
    return {
        "action": data["ref"],
        "action_commit": data["commit"],
        "action_inputs": tuple(data["inputs"].items()),
        "action_outputs": tuple(data["outputs"]),
    }


@dataclass(frozen=True)
class ExecutionPlan:
    """Steps in a topological order (ties broken by declaration order)."""

    pipeline: str
    params: tuple[tuple[str, Any], ...]
    steps: tuple[StepPlan, ...]
    inferred: tuple[tuple[str, str, str], ...] = ()
    """Orderings Conveyor added: (consumer step, producer step, path)."""

    def step(self, step_id: str) -> StepPlan:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @staticmethod
    def from_json(data: dict[str, Any]) -> ExecutionPlan:
        """The inverse of :meth:`to_json` (used by the plan cache)."""
        return ExecutionPlan(
            pipeline=data["pipeline"],
            params=tuple(data["params"].items()),
            steps=tuple(StepPlan.from_json(s) for s in data["steps"]),
            inferred=tuple((i["step"], i["needs"], i["path"]) for i in data["inferred_needs"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "params": dict(self.params),
            "steps": [step.to_json() for step in self.steps],
            "inferred_needs": [
                {"step": consumer, "needs": producer, "path": path}
                for consumer, producer, path in self.inferred
            ],
        }
