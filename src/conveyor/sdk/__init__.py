"""The Python SDK: the one place that wires concrete parts together."""

from conveyor.sdk.inspect import lineage, run_json, why
from conveyor.sdk.maintenance import collect_garbage, fetch_outputs
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunHooks, RunRequest, compile_project, rerun, start_run

__all__ = [
    "Project",
    "RunHooks",
    "RunRequest",
    "collect_garbage",
    "compile_project",
    "fetch_outputs",
    "lineage",
    "rerun",
    "run_json",
    "start_run",
    "why",
]
