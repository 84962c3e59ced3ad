"""The environment the pipeline gives a step (executors add it to their own base)."""

from __future__ import annotations

from conveyor.domain.tracking import TRACKING_ENV, tracking_path
from conveyor.plan.model import StepPlan


def step_environment(
    step: StepPlan, run_id: str, project_dir: str, attempt: int, failed_so_far: bool
) -> dict[str, str]:
    """The step's declared variables, ``CONVEYOR_*``, ``MATRIX_*`` and the run status so
    far (``success`` or ``failure``) in ``CONVEYOR_RUN_STATUS`` and the step's
    ``status-env`` variables (Drone's ``DRONE_BUILD_STATUS``; Dotscience's
    ``PLUGIN_STATUS=ok/error``, which names its own words)."""
    env = dict(step.env)
    env.update(
        {
            "CONVEYOR_RUN_ID": run_id,
            "CONVEYOR_STEP_ID": step.id,
            "CONVEYOR_JOB": step.job,
            "CONVEYOR_PROJECT_DIR": project_dir,
            "CONVEYOR_ATTEMPT": str(attempt),
            # relative to CONVEYOR_PROJECT_DIR, which each executor sets to where it runs
            TRACKING_ENV: tracking_path(step.id),
        }
    )
    for key, value in step.matrix:
        env[f"MATRIX_{key.upper()}"] = str(value)
    env["CONVEYOR_RUN_STATUS"] = "failure" if failed_so_far else "success"
    for entry in step.status_env:
        # NAME, or NAME=OK/FAILED with the words the reader expects (PLUGIN_STATUS=ok/error)
        name, _, words = entry.partition("=")
        ok, _, failed = words.partition("/")
        env[name] = (failed or "failure") if failed_so_far else (ok or "success")
    return env
