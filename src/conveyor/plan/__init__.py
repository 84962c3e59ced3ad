"""Pure compilation: spec + params + selection -> frozen :class:`ExecutionPlan`."""

from conveyor.plan.compile import compile_plan, parse_params
from conveyor.plan.model import ExecutionPlan, StepPlan

__all__ = ["ExecutionPlan", "StepPlan", "compile_plan", "parse_params"]
