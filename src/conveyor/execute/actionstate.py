"""What action steps of a run produced, so later steps' inputs can be resolved.

A step whose inputs refer to an earlier step's outputs is rendered just before it
launches (its fingerprint includes the resolved values). Outputs are read from the
``::name::<json>`` lines of a finished step's log and recorded as an ``action-outputs``
event, which is also where a cache hit finds them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.metadata.repository import MetadataRepository
from conveyor.plan import actions
from conveyor.plan.model import StepPlan

OUTPUTS_EVENT = "action-outputs"


class ActionState:
    def __init__(self, records: MetadataRepository) -> None:
        self.records = records
        self.outputs: dict[str, dict[str, Any]] = {}
        self._inputs: dict[str, dict[str, Any]] = {}

    def prepare(self, step: StepPlan) -> dict[str, Any] | str:
        """The fingerprint part of an action step, or why its inputs cannot be resolved."""
        try:
            resolved = actions.resolve_inputs(dict(step.action_inputs), step.job, self.outputs)
            resolved = actions.cast_inputs(resolved, dict(step.action_types), step.action_rules)
        except actions.UnresolvedOutput as exc:
            return (
                f"step {step.id} reads {exc.args[0]}, which that step did not set "
                "(an action sets an output by printing a line ::name::<json>)"
            )
        except ValueError as exc:
            return f"step {step.id}: an input of its action: {exc}"
        self._inputs[step.id] = resolved
        return {"ref": step.action, "commit": step.action_commit, "inputs": resolved}

    def environment(self, step: StepPlan) -> dict[str, str]:
        if step.action is None:
            return {}
        return actions.input_environment(self._inputs.get(step.id, {}))

    def finished(self, step: StepPlan, log_path: str | None) -> dict[str, Any] | None:
        """Outputs an action step printed (None for a step without an action);
        ``actions.BadOutput`` when a line breaks its format's rule."""
        if step.action is None:
            return None
        text = ""
        if log_path:
            try:
                text = Path(log_path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
        values = actions.parse_outputs(text, step.action_outputs, step.action_rules)
        self.outputs[step.id] = values
        return values

    def restore(self, step: StepPlan, run_id: str) -> None:
        """A cache hit: the outputs the run that did the work recorded."""
        if step.action is None:
            return
        for event in self.records.events(run_id):
            if event.kind == OUTPUTS_EVENT and event.step_id == step.id:
                self.outputs[step.id] = dict(event.data.get("outputs", {}))
