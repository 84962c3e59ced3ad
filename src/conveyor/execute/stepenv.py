"""The environment the pipeline gives a step (executors add it to their own base)."""

from __future__ import annotations

from conveyor.plan.model import StepPlan


def step_environment(
    step: StepPlan, run_id: str, project_dir: str, attempt: int, failed_so_far: bool
) -> dict[str, str]:
    """The step's declared variables, ``CONVEYOR_*``, ``MATRIX_*`` and the run status so
    far (``success`` or ``failure``) in ``CONVEYOR_RUN_STATUS`` and the step's
    ``status-env`` variables (Drone's ``DRONE_BUILD_STATUS``)."""
    env = dict(step.env)
    env.update(
        {
            "CONVEYOR_RUN_ID": run_id,
            "CONVEYOR_STEP_ID": step.id,
            "CONVEYOR_JOB": step.job,
            "CONVEYOR_PROJECT_DIR": project_dir,
            "CONVEYOR_ATTEMPT": str(attempt),
        }
    )
    for key, value in step.matrix:
        env[f"MATRIX_{key.upper()}"] = str(value)
    status = "failure" if failed_so_far else "success"
    env["CONVEYOR_RUN_STATUS"] = status
    for name in step.status_env:
        env[name] = status
    return env
