"""Pipeline files -> validated :class:`PipelineSpec` (one loader per format)."""
