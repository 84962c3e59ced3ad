"""REST: a project's deployments (``deployments/service.py`` does the work).

A call's body is a JSON object of the inputs or ``multipart/form-data``: file inputs
as file parts (each named after its input; the client's filename is never used), the
others as form fields (JSON text for the non-string types); anything else is a 415.
Leads create, change and delete; members (or the holder of an endpoint token, sent as
``Authorization: EndpointToken TOKEN``) call; viewers read. A refused call is JSON with
a status of its own: 422 for bad input (naming the input and the type expected), 409
disabled or taken, 413 too large, 429 over the rate limit, 503 the worker died, 504 out
of time, 500 the pipeline itself failed (with its execution's id).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from conveyor.errors import ConveyorError
from conveyor.server.api_runs import (
    artifact_response,
    json_bytes,
    output_path,
    stored_blob,
    stored_output,
)
from conveyor.server.auth import Access, authorize, lead, server, server_state, viewer
from conveyor.server.deployments import service
from conveyor.server.deployments.errors import DeploymentConflict, ExecutionFailed
from conveyor.server.deployments.model import (
    TOKEN_SCHEME,
    CallFile,
    CallInputError,
    DeploymentCreate,
    DeploymentSettings,
    form_value,
    token_matches,
)
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.limits import MAX_CALL_BODY
from conveyor.server.masking import Masker
from conveyor.server.state import ServerState
from conveyor.server.warmpool.errors import CallTimeout, RateLimited, ServerStopping, WorkerLost

MAX_PARTS = 100
"""Fields and files of a multipart call (more: refused before they are parsed)."""
router = APIRouter(prefix="/api/v1/projects/{project}/deployments", tags=["deployments"])
Viewer = Annotated[Access, Depends(viewer)]
Lead = Annotated[Access, Depends(lead)]
State = Annotated[ServerState, Depends(server_state)]
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (CallInputError, 422),
    (DeploymentConflict, 409),
    (RateLimited, 429),
    (WorkerLost, 503),
    (ServerStopping, 503),
    (CallTimeout, 504),
    (ExecutionFailed, 500),
)


class DeploymentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: DeploymentSettings | None = None
    ref: str | None = Field(default=None, description="A branch, tag or commit to serve now.")
    pin: bool | None = Field(default=None, description="Stop (true) or start following the ref.")


def refusal(exc: ConveyorError) -> JSONResponse | None:
    """The JSON answer of a refused deployment operation (None: the app's handler)."""
    for kind, code in STATUS:
        if isinstance(exc, kind):
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, CallInputError):
                body.update(input=exc.input, expected=exc.expected)
            if isinstance(exc, ExecutionFailed):
                body["execution_id"] = exc.execution_id
            headers = {"Retry-After": "1"} if code == 429 else None
            return JSONResponse(body, status_code=code, headers=headers)
    return None


def _refused(exc: ConveyorError) -> Response:
    answer = refusal(exc)
    if answer is None:
        raise exc
    return answer


@router.get("")
def list_deployments(access: Viewer, state: State) -> dict[str, Any]:
    """The project's deployments."""
    return {"deployments": [r.to_json() for r in service.list_all(state, access.project)]}


@router.post("", status_code=201, response_model=None)
def create_deployment(access: Lead, state: State, body: DeploymentCreate) -> Any:
    """A new deployment (leads). An endpoint's token is in the answer, once: keep it."""
    try:
        record, token = service.create(state, access.project, access.user.name, body)
    except ConveyorError as exc:
        return _refused(exc)
    return {**record.to_json(), "token": token}


@router.get("/{deployment}")
def inspect_deployment(access: Viewer, state: State, deployment: str) -> dict[str, Any]:
    """A deployment, with its executions counted by status and the process ids of the
    warm workers this server process runs for it."""
    record = service.get(state, access.project, deployment)
    counts = service.store(state).count(access.project, deployment)
    workers = state.deployments.pids(access.project, deployment)
    return {**record.to_json(), "executions": counts, "warm_workers": workers}


@router.patch("/{deployment}", response_model=None)
def update_deployment(access: Lead, state: State, deployment: str, body: DeploymentChange) -> Any:
    """New settings and/or a new ref; a warm pool is replaced once the new one is ready."""
    try:
        record = service.update(
            state, access.project, deployment, body.settings, body.ref, body.pin
        )
    except ConveyorError as exc:
        return _refused(exc)
    return record.to_json()


@router.post("/{deployment}/enable")
def enable_deployment(access: Lead, state: State, deployment: str) -> dict[str, Any]:
    return service.set_enabled(state, access.project, deployment, True).to_json()


@router.post("/{deployment}/disable")
def disable_deployment(access: Lead, state: State, deployment: str) -> dict[str, Any]:
    """Calls are refused (409) and periodic executions stop until it is enabled."""
    return service.set_enabled(state, access.project, deployment, False).to_json()


@router.delete("/{deployment}")
def delete_deployment(access: Lead, state: State, deployment: str) -> dict[str, Any]:
    """The deployment goes: its token stops, its warm workers drain, its checkouts go
    (its execution records stay in the database)."""
    service.delete(state, access.project, deployment)
    return {"deleted": deployment}


@router.post("/{deployment}/token", response_model=None)
def rotate_token(access: Lead, state: State, deployment: str) -> Any:
    """A new endpoint token; the old one stops working at once."""
    try:
        return {
            "name": deployment,
            "token": service.rotate_token(state, access.project, deployment),
        }
    except ConveyorError as exc:
        return _refused(exc)


@router.get("/{deployment}/executions")
def list_executions(
    access: Viewer,
    state: State,
    deployment: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The deployment's executions, newest first (inputs, outputs, logs, duration, caller)."""
    return {"executions": service.executions(state, access.project, deployment, limit)}


@router.get("/{deployment}/executions/{execution_id}")
def show_execution(
    access: Viewer, state: State, deployment: str, execution_id: str
) -> dict[str, Any]:
    found = service.store(state).execution(access.project, execution_id)
    if found is None or found["deployment"] != deployment:
        raise HTTPException(
            404, f"deployment {deployment!r} has no execution {execution_id[:40]!r}"
        )
    return found


@router.get("/{deployment}/executions/{execution_id}/outputs/{output}", response_model=None)
def download_output(
    request: Request, project: str, deployment: str, execution_id: str, output: str
) -> Response:
    """A file output of an execution (its answer's ``download``): for viewers, and for
    the holder of the deployment's endpoint token (an endpoint's caller fetches what its
    call made). Text holding a secret is masked, a binary one withheld, as artifacts are."""
    state = server(request)
    record = _by_endpoint_token(request, project, deployment)
    if record is None:
        authorize(request, project, "viewer")
        record = service.get(state, project, deployment)
    found = service.store(state).execution(project, execution_id[:40])
    value = (found or {}).get("outputs") or {}
    item = value.get(output) if found and found["deployment"] == deployment else None
    # a warm call's file is the server's record of a file mapping (never a function's
    # value that looks like one: that could name any blob of the shared store)
    files = {m.name for m in record.settings.outputs if m.source == "file"}
    warm = (
        isinstance(item, dict)
        and found is not None
        and found["run_id"] is None
        and output in files
        and isinstance(item.get("path"), str)
        and isinstance(item.get("digest"), str)
    )
    url = str(item.get("url")) if isinstance(item, dict) else ""
    if not isinstance(item, dict) or not found or not (warm or "/artifacts/" in url):
        raise HTTPException(
            404, f"execution {execution_id[:40]!r} has no file output {output[:100]!r}"
        )

    masker = Masker(state.secrets_for(project).values())
    if warm:  # a low_latency call's file: in the content store, no run
        path = output_path(str(item["path"]))
        stored = stored_blob(state.config.open_store(), str(item.get("digest")), path)
        return artifact_response(stored, path, masker)
    path = output_path(url.split("/artifacts/", 1)[1])
    run_id = str(found["run_id"])
    if state.db.records.get_run(run_id) is None:  # the project's retention deleted it
        raise HTTPException(
            410, f"the run of execution {execution_id[:40]!r} was deleted: its files are gone"
        )
    stored = stored_output(
        state.config.open_store(), state.db.records.step_runs(run_id), run_id, path
    )
    return artifact_response(stored, path, masker)


@router.post("/{deployment}/call", response_model=None)
async def call_deployment(request: Request, project: str, deployment: str) -> Response:
    """Call an endpoint with its inputs as a JSON object, or as ``multipart/form-data``
    (file inputs as file parts, the others as form fields); answers its outputs."""
    data = await _body(request, MAX_CALL_BODY)
    try:
        if _multipart(request):  # parsed only for a caller let in, within the limit
            record, caller = await run_in_threadpool(_caller, request, project, deployment, data)
            form = await _form(request, data)
            answer = await run_in_threadpool(_call_form, server(request), record, caller, form)
        else:
            answer = await run_in_threadpool(_call, request, project, deployment, data)
    except ConveyorError as exc:
        return _refused(exc)
    return Response(json_bytes(answer), media_type="application/json")


Form = tuple[dict[str, str], dict[str, CallFile]]


def _kind(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _multipart(request: Request) -> bool:
    # a form without files is a form too
    return _kind(request) in ("multipart/form-data", "application/x-www-form-urlencoded")


async def _form(request: Request, data: bytes) -> Form:
    """The fields and file parts of a multipart body already read (and capped)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    again = Request(request.scope, replay)
    try:
        form = await again.form(max_files=MAX_PARTS, max_fields=MAX_PARTS)
    except (MultiPartException, StarletteHTTPException, ValueError) as exc:
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
        raise HTTPException(400, f"the multipart body cannot be read: {detail}") from None
    fields: dict[str, str] = {}
    files: dict[str, CallFile] = {}
    try:
        for key, value in form.multi_items():
            if key in fields or key in files:
                raise CallInputError(key[:100], f"input {key[:100]!r} is sent twice")
            if isinstance(value, str):
                fields[key] = value
            else:
                kind = value.content_type or "application/octet-stream"
                files[key] = CallFile(await value.read(), kind[:200])
    finally:
        await form.close()
    return fields, files


def _call(request: Request, project: str, deployment: str, data: bytes) -> dict[str, Any]:
    """A JSON call: who calls, the deployment, its body limit, the call: one trip to a
    thread."""
    record, caller = _caller(request, project, deployment, data)
    kind = _kind(request)
    if kind not in ("", "application/json", "text/plain"):
        raise HTTPException(
            415, f"a call's body is JSON or multipart/form-data, not {kind[:100]!r}"
        )
    return service.call(server(request), record, _inputs(data), caller)


def _call_form(
    state: ServerState, record: DeploymentRecord, caller: str, form: Form
) -> dict[str, Any]:
    mappings = {m.name: m for m in record.settings.inputs}
    fields, files = form
    body = {k: form_value(mappings.get(k), k, v) for k, v in fields.items()}
    return service.call(state, record, body, caller, files)


def _by_endpoint_token(request: Request, project: str, deployment: str) -> DeploymentRecord | None:
    """The deployment when the request holds an endpoint token (401 if not this one's);
    ``None`` when it uses another scheme (an API token: the caller's role decides)."""
    header = request.headers.get("authorization") or ""
    if not header.startswith(f"{TOKEN_SCHEME} "):
        return None
    record = service.get(server(request), project, deployment)
    if not token_matches(header, record.token_digest):
        raise HTTPException(401, "this endpoint token is not valid for this deployment")
    return record


def _caller(
    request: Request, project: str, deployment: str, data: bytes
) -> tuple[DeploymentRecord, str]:
    """The deployment and who calls it (401/403/404), the body within its limit (413)."""
    if (by_token := _by_endpoint_token(request, project, deployment)) is not None:
        record, caller = by_token, "endpoint-token"
    else:
        caller = authorize(request, project, "member").user.name
        record = service.get(server(request), project, deployment)
    if len(data) > record.settings.max_body:
        cap = record.settings.max_body
        raise HTTPException(413, f"the body is larger than this deployment's limit ({cap} bytes)")
    return record, caller


async def _body(request: Request, cap: int) -> bytes:
    too_big = HTTPException(413, f"the body is larger than this deployment's limit ({cap} bytes)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_big
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > cap:
            raise too_big
    return bytes(data)


def _inputs(data: bytes) -> dict[str, Any]:
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "the body is not JSON: send the inputs as a JSON object") from None
    if not isinstance(value, dict):
        raise HTTPException(422, "the body must be a JSON object of the inputs")
    return value
