"""REST: projects, members, settings, secrets (names only) and schedules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from conveyor.domain.envnames import EXAMPLES, changes_execution
from conveyor.errors import UsageError
from conveyor.metadata.records import iso
from conveyor.server.auth import Access, current_user, lead, server_state, viewer
from conveyor.server.db.accounts import ROLES, User
from conveyor.server.db.vault import check_name
from conveyor.server.forge import TOKEN_SECRET, check_api
from conveyor.server.gitrepo import init_bare
from conveyor.server.masking import MIN_SECRET
from conveyor.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["projects"])
Viewer = Annotated[Access, Depends(viewer)]
Lead = Annotated[Access, Depends(lead)]
State = Annotated[ServerState, Depends(server_state)]
CurrentUser = Annotated[User, Depends(current_user)]


class ProjectCreate(BaseModel):
    name: str


class MemberPut(BaseModel):
    role: str = Field(description="viewer, member or lead")


class SecretPut(BaseModel):
    value: str = Field(min_length=1, max_length=64 * 1024)


class SettingsPut(BaseModel):
    executor: str | None = None
    parallelism: int | None = Field(default=None, ge=0)
    executors: dict[str, dict[str, Any]] | None = None
    network: bool | None = Field(
        default=None, description="Whether the project's steps reach the network (default on)."
    )
    mirror: str | None = Field(default=None, description="Where webhooks fetch commits from.")
    webhook_secret: str | None = Field(default=None, description="Write-only.")
    forge_api: str | None = Field(
        default=None,
        description="The forge's API for commit statuses (default https://api.github.com"
        " or https://gitlab.com); '' for the default.",
    )
    forge_token: str | None = Field(
        default=None,
        max_length=4096,
        description="Write-only: the token that posts commit statuses to the forge, kept "
        "in the vault and never given to steps; '' removes it.",
    )
    pachyderm_jobs: Literal["server", "worker"] | None = Field(
        default=None,
        description="Who runs the project's Pachyderm jobs: 'worker' (the `conveyor worker`"
        " processes) or 'server' (the server's own claimer, the default).",
    )
    pachyderm_ci: list[str] | None = Field(
        default=None,
        max_length=32,
        description="The Pachyderm spec files (paths in the repository) a push's CI flow"
        " builds the image for and updates; [] turns it off.",
    )
    pachyderm_ci_branch: str | None = Field(
        default=None, max_length=100, description="The branch the CI flow follows (main)."
    )
    pachyderm_ci_context: str | None = Field(
        default=None,
        max_length=255,
        description="The directory of the Dockerfile and its build context ('' the root).",
    )
    registry: str | None = Field(
        default=None,
        max_length=255,
        description="HOST[:PORT] of the image registry the CI flow pushes to.",
    )
    retention: dict[str, Any] | None = Field(
        default=None,
        description="Runs the server keeps after each run: keep_last, keep_days, keep_branches"
        " (any rule keeps a run); {} turns retention off.",
    )


class ScheduleCreate(BaseModel):
    cron: str
    branch: str = "main"


@router.get("/server", tags=["server"])
def server_load(user: CurrentUser, state: State) -> dict[str, Any]:
    """The queue at a glance: runs per status and which workers are busy (admins only)."""
    if not user.admin:
        raise HTTPException(403, "only a server admin sees the server's load")
    return {"projects": len(state.db.accounts.projects()), **state.db.queue.load()}


@router.get("/projects")
def list_projects(user: CurrentUser, state: State) -> list[dict[str, Any]]:
    """The projects the caller can see, with the caller's role."""
    accounts = state.db.accounts
    return [{"name": p, "role": accounts.role(user, p)} for p in accounts.visible_projects(user)]


@router.post("/projects", status_code=201)
def create_project(user: CurrentUser, state: State, body: ProjectCreate) -> dict[str, Any]:
    """Create a project with its git remote (server admins only)."""
    if not user.admin:
        raise HTTPException(403, "only a server admin creates projects")
    add_project(state, body.name)
    return {"name": body.name, "git": git_url(state, body.name)}


def add_project(state: ServerState, name: str) -> None:
    from conveyor.server.project_deletion import discard_files, forget_records

    if state.db.accounts.project(name) is None:  # what a deleted one left is not the new one's
        forget_records(state, name, state.db.accounts.orphan_runs(name))
    state.db.accounts.add_project(name)  # and its rows
    discard_files(state.config, name)  # and its files, if a crash left them
    init_bare(state.config.repo_dir(name))


@router.delete("/projects/{project}")
def delete_project(user: CurrentUser, state: State, project: str) -> dict[str, Any]:
    """Delete a project: its runs and their records, datasets, git repository, members,
    secrets, schedules (server admins only). 409 while one of its runs or Pachyderm
    triggers is queued or running, or while it has deployments. Blobs stay in the store
    until ``conveyor server gc``."""
    from conveyor.server.db.accounts import ProjectBusy
    from conveyor.server.project_deletion import delete_project as delete

    if not user.admin:
        raise HTTPException(403, "only a server admin deletes projects")
    try:
        deleted = delete(state, project)
    except ProjectBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return {"deleted": deleted.name, "runs": deleted.runs, "datasets": deleted.datasets}


def git_url(state: ServerState, name: str) -> str:
    return f"{state.config.base_url}/git/{name}.git"


@router.get("/projects/{project}")
def show_project(access: Viewer, state: State) -> dict[str, Any]:
    row = state.db.accounts.project(access.project) or {}
    settings = dict(row.get("settings") or {})
    return {
        "name": access.project,
        "role": access.role,
        "git": git_url(state, access.project),
        "settings": settings,
        "webhook_secret_set": row.get("webhook_secret") is not None,
        "forge_token_set": TOKEN_SECRET in state.vault.encrypted(access.project),
    }


@router.get("/projects/{project}/commits/{ref:path}")
def show_commit(access: Viewer, state: State, ref: str) -> dict[str, str]:
    """The commit a branch, tag or commit id names on the server (404: not here)."""
    from conveyor.vcs.git import resolve

    commit = resolve(state.config.repo_dir(access.project), _revision(ref))
    if commit is None:
        raise HTTPException(404, f"{ref[:200]!r} names no branch, tag or commit of the project")
    return {"ref": ref, "commit": commit}


@router.get("/projects/{project}/pipeline")
def show_pipeline(access: Viewer, state: State, ref: str = "main") -> dict[str, Any]:
    """The pipeline at a branch, tag or commit: its triggers and its compiled plan."""
    from conveyor.domain.conditions import TriggerContext, pipeline_values
    from conveyor.errors import ConveyorError
    from conveyor.plan.compile import compile_plan
    from conveyor.sdk.runfacts import server_payload
    from conveyor.server.triggers import load_spec_at
    from conveyor.vcs.git import resolve

    commit = resolve(state.config.repo_dir(access.project), _revision(ref))
    if commit is None:
        raise HTTPException(404, f"{ref!r} names no branch, tag or commit of the project")
    try:
        spec = load_spec_at(state, access.project, commit)
        # as a manual run of this ref would see it (its trigger's event and project)
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        event = server_payload(full, commit, "manual", access.user.name, access.project)
        trigger = TriggerContext(event, pipeline_values(spec.source.path, access.project))
        plan = compile_plan(spec, {}, [], trigger=trigger)
    except ConveyorError as exc:
        raise HTTPException(422, f"the pipeline at {commit[:12]} is invalid: {exc}") from exc
    return {
        "commit": commit,
        "name": spec.name,
        "on": spec.on.model_dump(),
        "plan": plan.to_json(),
    }


@router.put("/projects/{project}/settings")
def put_settings(access: Lead, state: State, body: SettingsPut) -> dict[str, Any]:
    """The executor and its options for this project's runs, the mirror, the webhook secret."""
    from conveyor.executors.registry import available

    known = available()
    for name in [body.executor or "", *(body.executors or {})]:
        if name and name not in known:
            raise HTTPException(400, f"there is no executor {name!r}; known: {', '.join(known)}")
    allowed = state.config.executors_allowed
    if body.executor and body.executor not in allowed:
        raise HTTPException(
            400,
            f"this server does not allow the {body.executor} executor (allowed: "
            f"{', '.join(sorted(allowed))}); a server admin allows it with --allow-executor",
        )
    if body.executors is not None:
        from conveyor.errors import ConveyorError
        from conveyor.server.executor_tables import check_tables

        try:
            check_tables(body.executors)
        except ConveyorError as exc:
            raise HTTPException(422, str(exc)) from exc
    if body.mirror is not None:
        _check_mirror(state, body.mirror)
    if body.forge_api:
        try:
            body.forge_api = check_api(body.forge_api)
        except UsageError as exc:
            raise HTTPException(400, str(exc)) from exc
    if body.retention is not None:
        from conveyor.errors import ConveyorError
        from conveyor.server.retention import policy_of

        try:
            policy_of(access.project, {"retention": body.retention})
        except ConveyorError as exc:
            raise HTTPException(422, str(exc)) from exc
    _check_ci(body)
    accounts = state.db.accounts
    settings = accounts.settings(access.project)
    changes = body.model_dump(exclude_none=True, exclude={"webhook_secret", "forge_token"})
    settings.update(changes)
    if body.forge_api == "":
        settings.pop("forge_api", None)
    if body.forge_token == "":
        state.vault.delete(access.project, TOKEN_SECRET)
    elif body.forge_token is not None:
        encrypted = state.keyring.encrypt(body.forge_token)
        state.vault.put(access.project, TOKEN_SECRET, encrypted, reserved=True)
    values: dict[str, Any] = {"settings": settings}
    if body.webhook_secret is not None:
        values["webhook_secret"] = state.keyring.encrypt(body.webhook_secret)
    accounts.update_project(access.project, values)
    return {"settings": settings}


def _check_ci(body: SettingsPut) -> None:
    from conveyor.server.pachyderm_ci import check_settings
    from conveyor.vcs.git import check_ref

    try:
        check_settings(body.pachyderm_ci, body.pachyderm_ci_context, body.registry)
        if body.pachyderm_ci_branch is not None:
            check_ref(f"refs/heads/{body.pachyderm_ci_branch}")
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from exc


def _check_mirror(state: ServerState, mirror: str) -> None:
    from conveyor.server.mirrors import check_mirror

    try:
        check_mirror(mirror, state.config.data, state.config.mirror_roots)
    except UsageError as exc:
        raise HTTPException(400, str(exc)) from exc


def _revision(rev: str) -> str:
    from conveyor.vcs.git import check_revision

    try:
        return check_revision(rev)
    except UsageError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/projects/{project}/members")
def list_members(access: Viewer, state: State) -> list[dict[str, str]]:
    return state.db.accounts.members(access.project)


@router.put("/projects/{project}/members/{user_name}")
def put_member(access: Lead, state: State, user_name: str, body: MemberPut) -> dict[str, str]:
    """Grant a role (viewer, member, lead)."""
    if body.role not in ROLES:
        raise HTTPException(400, f"{body.role!r} is not a role; use one of {', '.join(ROLES)}")
    state.db.accounts.grant(access.project, user_name, body.role)
    return {"user": user_name, "role": body.role}


@router.delete("/projects/{project}/members/{user_name}", status_code=204)
def delete_member(access: Lead, state: State, user_name: str) -> None:
    if not state.db.accounts.revoke(access.project, user_name):
        raise HTTPException(404, f"{user_name!r} is not a member of {access.project!r}")


@router.get("/projects/{project}/secrets")
def list_secrets(access: Lead, state: State) -> list[str]:
    """Secret names only: values never leave the server."""
    return state.vault.names(access.project)


@router.put("/projects/{project}/secrets/{name}", status_code=204)
def put_secret(access: Lead, state: State, name: str, body: SecretPut) -> None:
    """Store a secret (encrypted); steps see it as an environment variable."""
    check_name(name)
    if changes_execution(name) and not name.startswith("CONVEYOR_"):
        raise HTTPException(
            422,
            f"{name} changes how steps run ({EXAMPLES}), so it cannot be a secret's name; "
            "see docs/server.md",
        )
    if len(body.value) < MIN_SECRET:  # masking it would hide ordinary words and numbers
        raise HTTPException(
            400,
            f"a secret must have at least {MIN_SECRET} characters: shorter values cannot "
            "be masked in logs",
        )
    state.vault.put(access.project, name, state.keyring.encrypt(body.value))


@router.delete("/projects/{project}/secrets/{name}", status_code=204)
def delete_secret(access: Lead, state: State, name: str) -> None:
    if not state.vault.delete(access.project, name):
        raise HTTPException(404, f"{access.project!r} has no secret {name!r}")


@router.get("/projects/{project}/schedules")
def list_schedules(access: Viewer, state: State) -> list[dict[str, Any]]:
    return [_schedule_json(row) for row in state.db.schedules.for_project(access.project)]


def _schedule_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "next_at": iso(row["next_at"]), "created_at": iso(row["created_at"])}


@router.post("/projects/{project}/schedules", status_code=201)
def create_schedule(access: Lead, state: State, body: ScheduleCreate) -> dict[str, Any]:
    """Run the pipeline at the tip of a branch on a cron schedule (UTC)."""
    from conveyor.vcs.git import check_ref

    try:
        check_ref(f"refs/heads/{body.branch}")
    except UsageError as exc:
        raise HTTPException(400, f"{body.branch[:200]!r} is not a valid branch name") from exc
    try:
        row = state.db.schedules.add(access.project, body.cron, f"refs/heads/{body.branch}")
    except ValueError as exc:
        raise HTTPException(400, f"{body.cron!r} is not a cron expression: {exc}") from exc
    return _schedule_json(row)


@router.delete("/projects/{project}/schedules/{schedule_id}", status_code=204)
def delete_schedule(access: Lead, state: State, schedule_id: int) -> None:
    if not state.db.schedules.delete(access.project, schedule_id):
        raise HTTPException(404, f"{access.project!r} has no schedule {schedule_id}")
