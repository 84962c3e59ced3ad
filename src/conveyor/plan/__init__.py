"""Pure compilation: spec + params + selection -> frozen :class:`ExecutionPlan`."""
