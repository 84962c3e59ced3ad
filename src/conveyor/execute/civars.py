"""The variables Drone (and Dotscience) give a step, and their substitution at launch.

A step with ``ci: drone`` (or ``dotscience``) is given ``CI``, ``DRONE`` and the
``DRONE_*``/``CI_*`` variables Drone sets, from the run's record and facts; its command and
declared variables then go through Drone's ``${VAR}`` substitution with them
(:mod:`conveyor.plan.dronesubst`), each value quoted for its place in the shell text.
``DRONE_BUILD_NUMBER`` is the run's number in its project (1, 2, ...), as Drone numbers a
repository's builds; a record made without one (older records) falls back to the run id.
"""

from __future__ import annotations

from conveyor.domain.conditions import RunFacts
from conveyor.metadata.records import RunRecord
from conveyor.plan.model import StepPlan


def ci_variables(step: StepPlan, run: RunRecord, facts: RunFacts, workspace: str) -> dict[str, str]:
    commit = run.commit or ""
    tag = facts.ref.removeprefix("refs/tags/") if facts.ref.startswith("refs/tags/") else ""
    owner, _, name = facts.repo.rpartition("/")
    number = str(run.number) if run.number is not None else run.id
    env = {
        "CI": "true",
        "DRONE": "true",
        "DRONE_BUILD_NUMBER": number,
        "DRONE_BUILD_EVENT": facts.event,
        "DRONE_BUILD_CREATED": f"{int(run.created_at)}",
        "DRONE_BRANCH": facts.branch,
        "DRONE_COMMIT": commit,
        "DRONE_COMMIT_SHA": commit,
        "DRONE_COMMIT_AFTER": commit,
        "DRONE_COMMIT_BRANCH": facts.branch,
        "DRONE_COMMIT_REF": facts.ref,
        "DRONE_SOURCE_BRANCH": facts.branch,
        "DRONE_TARGET_BRANCH": facts.branch,
        "DRONE_TAG": tag,
        "DRONE_REPO": facts.repo,
        "DRONE_REPO_OWNER": owner,
        "DRONE_REPO_NAME": name,
        "DRONE_REPO_BRANCH": facts.branch,
        "DRONE_DEPLOY_TO": facts.target,
        "DRONE_CRON": facts.cron,
        "DRONE_STAGE_NAME": step.job,
        "DRONE_STEP_NAME": step.name,
        "DRONE_WORKSPACE": workspace,
        "CI_BUILD_NUMBER": number,
        "CI_BUILD_EVENT": facts.event,
        "CI_COMMIT_SHA": commit,
        "CI_COMMIT_BRANCH": facts.branch,
        "CI_COMMIT_REF": facts.ref,
        "CI_REPO": facts.repo,
        "CI_REPO_NAME": facts.repo,
        "CI_WORKSPACE": workspace,
    }
    if step.ci == "dotscience":
        env["DOTSCIENCE_TASK_ID"] = run.id
    return env
