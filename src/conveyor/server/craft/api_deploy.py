"""The Craft AI API's deployment routes (``deploy.py`` does the work): under
``/craft/{project}/api/v1`` with an access token (leads create, change and delete;
members trigger; viewers read), and the endpoints themselves under
``/craft/{project}/endpoints`` with the deployment's endpoint token only."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from conveyor.server.auth import server
from conveyor.server.craft import definitions, deploy, executions
from conveyor.server.craft.access import Lead, Member, Viewer
from conveyor.server.craft.api import MAX_FORM_FIELDS, MAX_FORM_FILES, held
from conveyor.server.craft.errors import CraftError, bad_input, not_found
from conveyor.server.db.accounts import role_at_least
from conveyor.server.deployments import service
from conveyor.server.deployments.model import token_matches
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.state import ServerState

router = APIRouter(prefix="/craft/{project}/api/v1", tags=["craft"])
endpoints = APIRouter(prefix="/craft/{project}/endpoints", tags=["craft"])
MAX_LOG_LINES = 10_000


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_input("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_input("the body is not a JSON object")
    return body


async def _call_body(
    request: Request, record: DeploymentRecord
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A call's inputs: a JSON object, or a form whose fields are JSON texts (the
    SDK's encoding when files are sent) and whose files are file inputs; at most the
    deployment's ``max_body`` bytes."""
    cap = record.settings.max_body
    too_large = CraftError(
        413, "PayloadTooLarge", f"a call of deployment {record.name!r} is at most {cap} bytes"
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise too_large
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
        values: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await value.read(cap + 1)
            else:
                try:
                    values[key] = json.loads(value)
                except ValueError:
                    values[key] = value
        if sum(len(data) for data in files.values()) > cap:
            raise too_large
        return values, files
    raw = await request.body()
    if len(raw) > cap:
        raise too_large
    if not raw.strip():
        return {}, {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_input("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_input("the body must be a JSON object of the inputs")
    return body, {}


# ---- with an access token ----------------------------------------------------------


@router.post("/endpoints", status_code=201)
async def create_endpoint(request: Request, access: Lead) -> dict[str, Any]:
    """``create_deployment(execution_rule="endpoint")``."""
    return await _create(request, access.project, access.user, "endpoint")


@router.post("/periodic-deployment", status_code=201)
async def create_periodic(request: Request, access: Lead) -> dict[str, Any]:
    """``create_deployment(execution_rule="periodic", schedule=...)``."""
    return await _create(request, access.project, access.user, "periodic")


async def _create(request: Request, project: str, who: str, kind: str) -> dict[str, Any]:
    state = server(request)
    body = await _json(request)
    await run_in_threadpool(deploy.create, state, project, who, kind, body)
    record = await run_in_threadpool(deploy.get, state, project, str(body["name"]))
    return await run_in_threadpool(deploy.to_json, state, record, True)


@router.get("/deployments")
def list_deployments(request: Request, access: Viewer) -> list[dict[str, Any]]:
    return [deploy.list_item(r) for r in deploy.of_project(server(request), access.project)]


@router.get("/deployments/{name}")
def get_deployment(request: Request, access: Viewer, name: str) -> dict[str, Any]:
    """A deployment; ``up`` at once (an elastic deployment has nothing to start). Its
    endpoint token is shown to leads in the minutes after it was made (only its digest
    is stored), else ``null``."""
    state = server(request)
    record = deploy.get(state, access.project, name)
    return deploy.to_json(state, record, role_at_least(access.role, "lead"))


@router.patch("/deployments/{name}")
async def update_deployment(request: Request, access: Lead, name: str) -> dict[str, Any]:
    state = server(request)
    body = await _json(request)
    await run_in_threadpool(deploy.update, state, access.project, name, body)
    record = await run_in_threadpool(deploy.get, state, access.project, name)
    return await run_in_threadpool(deploy.to_json, state, record, True)


@router.delete("/deployments/{name}")
def delete_deployment(request: Request, access: Lead, name: str) -> dict[str, Any]:
    state = server(request)
    record = deploy.get(state, access.project, name)
    service.delete(state, access.project, record.name)
    return {"name": record.name, "execution_rule": record.kind}


@router.get("/deployments/{name}/executions/latest")
def latest_execution(request: Request, access: Viewer, name: str) -> Response:
    state = server(request)
    found = deploy.latest(state, deploy.get(state, access.project, name))
    return JSONResponse({"execution_id": found} if found else None)


@router.post("/deployments/{name}/executions")
async def trigger(request: Request, access: Member, name: str) -> dict[str, Any]:
    """``trigger_endpoint`` without the endpoint token: a member's call."""
    state = server(request)
    record = await run_in_threadpool(deploy.get, state, access.project, name)
    values, files = await _call_body(request, record)
    deploy.admit(state, record)
    run_id = await run_in_threadpool(deploy.launch, state, record, values, files, access.user)
    return {"execution_id": run_id}


@router.post("/deployments/{name}/logs")
async def deployment_logs(request: Request, access: Viewer, name: str) -> list[dict[str, Any]]:
    """The logs of its last executions (elastic: no pod of its own)."""
    try:
        body = await request.json()
    except ValueError:
        body = {}
    limit = body.get("limit") if isinstance(body, dict) else None
    if not isinstance(limit, int) or not 0 < limit <= MAX_LOG_LINES:
        limit = MAX_LOG_LINES
    state = server(request)
    record = await run_in_threadpool(deploy.get, state, access.project, name)
    return await run_in_threadpool(deploy.log_lines, state, record, limit)


@router.post("/endpoints/{name}/generate-new-token")
async def new_token(request: Request, access: Lead, name: str) -> dict[str, str]:
    """A new endpoint token (given, or made here); the old one stops at once."""
    form = await request.form(max_files=0, max_fields=10)
    given = form.get("endpoint_token")
    text = given if isinstance(given, str) else None
    token = await run_in_threadpool(deploy.rotate, server(request), access.project, name, text)
    return {"endpoint_token": token}


# ---- with the endpoint token -------------------------------------------------------


def _opened(state: ServerState, project: str, name: str, token: str | None) -> DeploymentRecord:
    """The endpoint deployment this token opens. No such deployment and a wrong token
    get the same answer: a token holder learns nothing of other deployments."""
    record = service.store(state).get(project[:100], name[:100])
    header = f"EndpointToken {token}" if token is not None else None
    if (
        record is None
        or deploy.pipeline_of(record) is None
        or record.kind != "endpoint"
        or not token_matches(header, record.token_digest)
    ):
        raise CraftError(
            401, "Unauthorized", f"this endpoint token does not open the endpoint {name[:100]!r}"
        )
    return record


def _header_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme == "EndpointToken" else None


@endpoints.post("/{name}")
async def call_endpoint(request: Request, project: str, name: str) -> dict[str, Any]:
    """A call (``Authorization: EndpointToken T``): an execution, its id answered at
    once; the results route waits for it."""
    state = server(request)
    token = _header_token(request)
    record = await run_in_threadpool(_opened, state, project, name, token)
    values, files = await _call_body(request, record)
    deploy.admit(state, record)
    run_id = await run_in_threadpool(deploy.launch, state, record, values, files, "endpoint-token")
    return {"execution_id": run_id}


@endpoints.get("/v1/{name}/executions/{execution_id}")
async def endpoint_results(
    request: Request, project: str, name: str, execution_id: str, token: str = ""
) -> Response:
    """An execution's outputs (``?token=`` the endpoint token): held while it runs,
    then 307 to itself; values as ``{"value": V}``, files as ``{"url": U}``."""
    state = server(request)
    record = await run_in_threadpool(_opened, state, project, name, token or None)
    run = await run_in_threadpool(deploy.execution_of, state, record, execution_id)
    found = await held(request, state, run)
    if isinstance(found, Response):
        return found
    if executions.status_of(found) != "Succeeded":
        raise CraftError(
            500,
            "ExecutionFailed",
            f"the execution {found.id} ended {executions.status_of(found).lower()}"
            + (f": {found.error}" if found.error else ""),
        )
    repo = state.config.repo_dir(project)
    definition = await run_in_threadpool(definitions.definition_at, repo, found.commit)
    values = await run_in_threadpool(executions.output_values, state, found)
    nulls = {m.name for m in record.settings.outputs if m.source == "none"}
    base = f"{str(request.base_url).rstrip('/')}/craft/{project}/endpoints/v1/{record.name}"
    outputs: dict[str, Any] = {}
    for output in definition.get("outputs", []):
        key = output["name"]
        if key in nulls:
            continue
        if output["data_type"] == "file":
            outputs[key] = {"url": f"{base}/executions/{found.id}/outputs/{key}"}
        else:
            outputs[key] = {"value": values.get(key)}
    return JSONResponse({"execution_id": found.id, "outputs": outputs})


@endpoints.get("/v1/{name}/executions/{execution_id}/outputs/{output}")
def endpoint_file(
    request: Request, project: str, name: str, execution_id: str, output: str, token: str = ""
) -> Response:
    """A file output of an execution (``?token=`` the endpoint token)."""
    state = server(request)
    record = _opened(state, project, name, token or None)
    run = deploy.execution_of(state, record, execution_id)
    definition = definitions.definition_at(state.config.repo_dir(project), run.commit)
    files = {o["name"] for o in definition.get("outputs", []) if o["data_type"] == "file"}
    path = executions.output_path(state, run, f"files/{output}") if output in files else None
    if path is None:
        raise not_found(f"the execution {run.id} has no file output {output[:100]!r}")
    return Response(path.read_bytes(), media_type="application/octet-stream")
