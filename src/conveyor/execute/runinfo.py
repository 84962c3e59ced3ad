"""Facts about the run that every step sees, for plugins that report on it."""

from __future__ import annotations

from conveyor.metadata.records import RunRecord


def run_environment(run: RunRecord) -> dict[str, str]:
    """``CONVEYOR_PIPELINE``, ``CONVEYOR_RUN_STARTED`` (Unix seconds), ``CONVEYOR_COMMIT``."""
    env = {
        "CONVEYOR_PIPELINE": run.pipeline,
        "CONVEYOR_RUN_STARTED": f"{run.started_at or run.created_at:.3f}",
    }
    if run.commit:
        env["CONVEYOR_COMMIT"] = run.commit
    return env
