"""Pipeline files -> validated :class:`PipelineSpec` (one loader per format)."""

from conveyor.spec.load import load_pipeline
from conveyor.spec.model import JobSpec, ParamSpec, PipelineSpec, StepSpec

__all__ = ["JobSpec", "ParamSpec", "PipelineSpec", "StepSpec", "load_pipeline"]
