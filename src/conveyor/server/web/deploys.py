"""The deployments pages: a project's deployments (name, kind, mode, pipeline, commit,
enabled, last call) and one deployment's settings and executions (time, caller,
status, duration, inputs, outputs, logs, the run of an elastic call).

Served by ``conveyor server`` only (a laptop's ``conveyor ui`` has no deployments).
Viewers read; a lead's enable, disable and rotate forms need the session's CSRF token
and a same-site Origin and call the REST API's own handlers (``api_deployments``). No
page shows an endpoint token, except the new one, once, to the lead who rotated it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.server import api_deployments as api
from conveyor.server.auth import server
from conveyor.server.deployments import service
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.web import session as sessions
from conveyor.server.web.lead import call_api, lead_form
from conveyor.server.web.render import render
from conveyor.server.web.views import branch_of, when

router = APIRouter(prefix="/ui", include_in_schema=False)
EXECUTIONS = 50  # shown on a deployment's page, newest first
MAX_JSON = 2000  # characters of an execution's inputs or outputs shown
SAVED = {"enabled": "Deployment enabled.", "disabled": "Deployment disabled: calls are refused."}


@router.get("/p/{project}/deployments")
def deployments_page(request: Request, project: str) -> HTMLResponse:
    session, access = sessions.page_access(request, project, "viewer")
    state = server(request)
    last = service.store(state).last_calls(project)
    rows = [_row(r, last.get(r.name)) for r in service.list_all(state, project)]
    context = {"project": project, "role": access.role, "deployments": rows}
    return render(request, "deployments.html", context, session)


@router.get("/p/{project}/deployments/{deployment}")
def deployment_page(
    request: Request, project: str, deployment: str, saved: str = ""
) -> HTMLResponse:
    return _deployment(request, project, deployment, SAVED.get(saved), None)


def _deployment(
    request: Request, project: str, deployment: str, saved: str | None, token: str | None
) -> HTMLResponse:
    session, access = sessions.page_access(request, project, "viewer")
    state = server(request)
    record = service.get(state, project, deployment)
    executions = service.store(state).executions(project, deployment, EXECUTIONS)
    context = {
        "project": project,
        "role": access.role,
        "d": _row(record, None),
        "settings": record.settings.model_dump(mode="json"),
        "counts": service.store(state).count(project, deployment),
        "executions": [_execution(e) for e in executions],
        "saved": saved,
        "new_token": token,
    }
    return render(request, "deployment.html", context, session)


@router.post("/p/{project}/deployments/{deployment}/enable")
async def enable(request: Request, project: str, deployment: str) -> Response:
    access, _form = await lead_form(request, project)
    await call_api(api.enable_deployment, access, server(request), deployment)
    return _back(project, deployment, "enabled")


@router.post("/p/{project}/deployments/{deployment}/disable")
async def disable(request: Request, project: str, deployment: str) -> Response:
    access, _form = await lead_form(request, project)
    await call_api(api.disable_deployment, access, server(request), deployment)
    return _back(project, deployment, "disabled")


@router.post("/p/{project}/deployments/{deployment}/token")
async def rotate(request: Request, project: str, deployment: str) -> Response:
    """A new endpoint token, shown on this answer only (never in a URL, never stored)."""
    access, _form = await lead_form(request, project)
    answer = await call_api(api.rotate_token, access, server(request), deployment)
    if isinstance(answer, Response):  # the API's refusal (a periodic deployment)
        raise HTTPException(answer.status_code, json.loads(bytes(answer.body))["detail"])
    saved = "New endpoint token: the old one stopped working. Copy it now."
    return _deployment(request, project, deployment, saved, str(answer["token"]))


def _row(record: DeploymentRecord, last: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": record.name,
        "kind": record.kind,
        "mode": record.mode,
        "ref": branch_of(record.ref),
        "follow": record.follow,
        "commit": record.commit[:12],
        "enabled": record.enabled,
        "has_token": record.token_digest is not None,
        "last_at": when(last["at"]) if last else "",
        "last_status": last["status"] if last else "",
        "calls": last["calls"] if last else 0,
    }


def _execution(e: dict[str, Any]) -> dict[str, Any]:
    duration = e["duration"]
    return {
        **e,
        "took": "" if duration is None else f"{duration * 1000:.0f} ms",
        "inputs": _json(e["inputs"]),
        "outputs": _json(e["outputs"]),
    }


def _json(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_JSON else text[:MAX_JSON] + " …"


def _back(project: str, deployment: str, saved: str) -> RedirectResponse:
    path = f"/ui/p/{quote(project)}/deployments/{quote(deployment)}?saved={saved}"
    return RedirectResponse(path, 303)
