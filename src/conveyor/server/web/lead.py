"""The lead's pages: a project's settings, members and roles, secrets (names only),
schedules, and its webhooks with their last deliveries and commit statuses.

Every route needs the lead role (``session.page_access``, the API's own check); a form
also needs the session's CSRF token and a same-site Origin, and calls the REST API's
own handler (``api_projects``), so the page refuses exactly what the API refuses.
A secret's value and the forge token go in, never out: the page shows names and
whether a write-only value is set.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConveyorError
from conveyor.metadata.records import iso
from conveyor.server import api_projects as api
from conveyor.server.auth import Access, server
from conveyor.server.db.accounts import ROLES
from conveyor.server.forge import TOKEN_SECRET
from conveyor.server.web import session as sessions
from conveyor.server.web.render import render
from conveyor.server.web.tables import read_table, toml_text

router = APIRouter(prefix="/ui", include_in_schema=False)
EDITED_TABLES = ("htcondor", "spark", "dask")
"""The executor tables the page edits; the server sets the local executor's sandbox."""
M = TypeVar("M", bound=BaseModel)
SAVED = {  # what a form did, shown once after its redirect (never text from the request)
    "settings": "Settings saved.",
    "executors": "Executor tables saved.",
    "retention": "Retention saved.",
    "ci": "Pachyderm CI saved.",
    "member": "Role saved.",
    "member-removed": "Member removed.",
    "secret": "Secret saved; its value will not be shown again.",
    "secret-removed": "Secret removed.",
    "schedule": "Schedule added.",
    "schedule-removed": "Schedule removed.",
}


@router.get("/p/{project}/settings")
def settings_page(request: Request, project: str, saved: str = "") -> HTMLResponse:
    session, access = sessions.page_access(request, project, "lead")
    state = server(request)
    row = state.db.accounts.project(project) or {}
    settings = dict(row.get("settings") or {})
    tables = dict(settings.get("executors") or {})
    base = state.config.base_url
    context = {
        "project": project,
        "role": access.role,
        "saved": SAVED.get(saved),
        "settings": settings,
        "executors": sorted(state.config.executors_allowed),
        "tables": {n: toml_text(tables.get(n) or {}) for n in EDITED_TABLES},
        "other_tables": {k: v for k, v in tables.items() if k not in EDITED_TABLES},
        "retention": _retention_fields(settings.get("retention")),
        "webhook_secret_set": row.get("webhook_secret") is not None,
        "forge_token_set": TOKEN_SECRET in state.vault.encrypted(project),
        "members": state.db.accounts.members(project),
        "roles": ROLES,
        "me": access.user.name,
        "secrets": state.vault.names(project),
        "schedules": [
            {**s, "next": iso(s["next_at"]), "branch": s["ref"].removeprefix("refs/heads/")}
            for s in state.db.schedules.for_project(project)
        ],
        "hooks": {
            "github": f"{base}/hooks/github/{project}",
            "gitlab": f"{base}/hooks/gitlab/{project}",
        },
        "deliveries": [{**d, "at": iso(d["received_at"])} for d in state.hook_log.recent(project)],
        "statuses": [
            {**s, "at": iso(s["sent_at"] or s["created_at"])}
            for s in state.statuses.recent(project)
        ],
    }
    return render(request, "settings.html", context, session)


@router.post("/p/{project}/settings")
async def save_settings(request: Request, project: str) -> Response:
    access, form = await lead_form(request, project)
    fields: dict[str, Any] = {}
    if form.get("executor"):
        fields["executor"] = form["executor"]
    if form.get("parallelism", "").strip():
        fields["parallelism"] = form["parallelism"].strip()
    if form.get("network") in ("on", "off"):
        fields["network"] = form["network"] == "on"
    for name in ("mirror", "forge_api"):
        if form.get(name, "").strip():
            fields[name] = form[name].strip()
    for name in ("webhook_secret", "forge_token"):  # write-only: empty keeps the old one
        if form.get(name):
            fields[name] = form[name]
    if form.get("forge_token_remove") == "1":
        fields["forge_token"] = ""
    body = _model(api.SettingsPut, fields)
    await call_api(api.put_settings, access, server(request), body)
    return _back(project, "settings")


@router.post("/p/{project}/settings/executors")
async def save_executor_tables(request: Request, project: str) -> Response:
    """The HTCondor, Spark and Dask tables, typed as TOML; an empty one is removed, the
    others (a plugin's, the local one) are kept as they are."""
    access, form = await lead_form(request, project)
    state = server(request)
    row = await run_in_threadpool(state.db.accounts.project, project) or {}
    tables = {
        k: v
        for k, v in dict(row.get("settings", {}).get("executors") or {}).items()
        if k not in EDITED_TABLES
    }
    for name in EDITED_TABLES:
        try:
            table = read_table(name, form.get(f"table-{name}", ""))
        except ConveyorError as exc:
            raise HTTPException(400, str(exc)) from None
        if table is not None:
            tables[name] = table
    body = _model(api.SettingsPut, {"executors": tables})
    await call_api(api.put_settings, access, state, body)
    return _back(project, "executors")


@router.post("/p/{project}/settings/retention")
async def save_retention(request: Request, project: str) -> Response:
    """Which runs the server keeps; every field empty turns retention off."""
    access, form = await lead_form(request, project)
    rules: dict[str, Any] = {}
    for name, kind, what in (
        ("keep_last", int, "a whole number"),
        ("keep_days", float, "a number"),
    ):
        text = form.get(name, "").strip()
        if text:
            try:
                rules[name] = kind(text)
            except ValueError:
                raise HTTPException(400, f"{name} is {what} >= 0, not {text[:40]!r}") from None
    branches = form.get("keep_branches", "").replace(",", " ").split()
    if branches:
        rules["keep_branches"] = branches
    body = _model(api.SettingsPut, {"retention": rules})
    await call_api(api.put_settings, access, server(request), body)
    return _back(project, "retention")


@router.post("/p/{project}/settings/ci")
async def save_ci(request: Request, project: str) -> Response:
    """The Pachyderm CI of pushes (its spec files, none: off; context, branch, registry),
    and where the project's Pachyderm jobs run (``pachyderm_jobs``)."""
    access, form = await lead_form(request, project)
    specs = [s.strip() for s in form.get("pachyderm_ci", "").split(",") if s.strip()]
    fields: dict[str, Any] = {
        "pachyderm_ci": specs,
        "pachyderm_ci_context": form.get("pachyderm_ci_context", "").strip(),
        "pachyderm_ci_branch": form.get("pachyderm_ci_branch", "").strip() or "main",
    }
    if form.get("registry", "").strip():
        fields["registry"] = form["registry"].strip()
    if form.get("pachyderm_jobs"):  # the API's model refuses anything but server|worker
        fields["pachyderm_jobs"] = form["pachyderm_jobs"]
    body = _model(api.SettingsPut, fields)
    await call_api(api.put_settings, access, server(request), body)
    return _back(project, "ci")


@router.post("/p/{project}/members")
async def save_member(request: Request, project: str) -> Response:
    """Add a member or change a member's role."""
    access, form = await lead_form(request, project)
    user = form.get("user", "").strip()
    if not user:
        raise HTTPException(400, "name the user to add")
    body = _model(api.MemberPut, {"role": form.get("role", "")})
    await call_api(api.put_member, access, server(request), user, body)
    return _back(project, "member")


@router.post("/p/{project}/members/{user_name}/remove")
async def remove_member(request: Request, project: str, user_name: str) -> Response:
    access, _form = await lead_form(request, project)
    await call_api(api.delete_member, access, server(request), user_name)
    return _back(project, "member-removed")


@router.post("/p/{project}/secrets")
async def save_secret(request: Request, project: str) -> Response:
    """Set or replace a secret: its value goes in and is never shown back."""
    access, form = await lead_form(request, project)
    body = _model(api.SecretPut, {"value": form.get("value", "")})
    await call_api(api.put_secret, access, server(request), form.get("name", "").strip(), body)
    return _back(project, "secret")


@router.post("/p/{project}/secrets/{name}/remove")
async def remove_secret(request: Request, project: str, name: str) -> Response:
    access, _form = await lead_form(request, project)
    await call_api(api.delete_secret, access, server(request), name)
    return _back(project, "secret-removed")


@router.post("/p/{project}/schedules")
async def add_schedule(request: Request, project: str) -> Response:
    access, form = await lead_form(request, project)
    fields = {"cron": form.get("cron", "").strip(), "branch": form.get("branch", "").strip()}
    body = _model(api.ScheduleCreate, fields)
    await call_api(api.create_schedule, access, server(request), body)
    return _back(project, "schedule")


@router.post("/p/{project}/schedules/{schedule_id}/remove")
async def remove_schedule(request: Request, project: str, schedule_id: int) -> Response:
    access, _form = await lead_form(request, project)
    await call_api(api.delete_schedule, access, server(request), schedule_id)
    return _back(project, "schedule-removed")


async def lead_form(request: Request, project: str) -> tuple[Access, dict[str, str]]:
    """A lead's form: same-site, with the session's CSRF token."""
    sessions.check_origin(request)
    session, access = await run_in_threadpool(sessions.page_access, request, project, "lead")
    if session is None:  # a source without sessions is read-only (check_origin says so)
        raise sessions.SignInNeeded()
    form = await sessions.form_fields(request)
    sessions.check_csrf(session, form.get("csrf"))
    return access, form


def _model(model: type[M], fields: dict[str, Any]) -> M:
    """The API's request model from form fields; its first complaint as a 400."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise HTTPException(400, f"{where}: {first.get('msg')}") from None


async def call_api(handler: Any, *args: Any) -> Any:
    """An API handler in a thread; a ``ConveyorError`` (a bad name) becomes a 400."""
    try:
        return await run_in_threadpool(handler, *args)
    except ConveyorError as exc:
        raise HTTPException(400, str(exc)) from None


def _retention_fields(rules: object) -> dict[str, str]:
    """The retention form's values from the stored rules (empty: not set)."""
    found = dict(rules) if isinstance(rules, dict) else {}
    return {
        "keep_last": str(found.get("keep_last", "")),
        "keep_days": str(found.get("keep_days", "")),
        "keep_branches": ", ".join(str(b) for b in found.get("keep_branches") or []),
    }


def _back(project: str, saved: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/p/{quote(project)}/settings?saved={saved}", 303)
