"""The Craft AI API's routes under ``/craft/{project}``: the SDK's environment URL and
control URL are both ``http://HOST:PORT/craft/<project>``; its paths (``/api/v1/...``)
follow. Everything the SDK can call answers: served, or a Craft-shaped error naming
what is not (the data store, ...). Deployments: ``api_deploy.py``."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from conveyor.server.auth import server
from conveyor.server.craft import definitions, executions
from conveyor.server.craft.access import Member, Viewer, refresh
from conveyor.server.craft.errors import (
    CraftError,
    bad_input,
    craft_response,
    not_found,
    unsupported,
)
from conveyor.server.craft.forms import io_list, typed_inputs, unflatten
from conveyor.server.craft.upload import unpack
from conveyor.server.db.accounts import role_at_least
from conveyor.server.db.queue import QueuedRun
from conveyor.server.state import ServerState


def install(app: FastAPI) -> None:
    """The routes, and Craft-shaped bodies for their refusals (after the deployments'
    routes: ``routes.install``; the catch-all of what is not served matches last)."""
    app.include_router(router)

    @app.exception_handler(CraftError)
    async def craft_error(_request: Request, exc: CraftError) -> Response:
        return craft_response(exc.status, exc.message, exc.name)


router = APIRouter(prefix="/craft/{project}/api/v1", tags=["craft"], include_in_schema=True)
HOLD = 20.0
"""Seconds a waiting SDK's request is held before its 307 (it asks again at once)."""
POLL = 1.0
"""Seconds between two reads of a waited execution's status: one query per waiter."""
MAX_FORM_FILES = 100
MAX_FORM_FIELDS = 2000
MAX_INPUTS_TEXT = 1024**2


async def _form(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A form body (multipart or urlencoded) -> nested fields and uploaded files."""
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    fields: list[tuple[str, str]] = []
    files: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[key] = await value.read()
        else:
            fields.append((key, value))
    return unflatten(fields), files


# ---- control: tokens and the user --------------------------------------------------


@router.post("/auth/refresh")
async def auth_refresh(request: Request, project: str) -> dict[str, str]:
    """The SDK's refresh exchange: an API token of this server -> a short-lived access
    token for this project."""
    try:
        body = await request.json()
    except ValueError:
        raise bad_input('send {"refresh_token": SDK_TOKEN} as JSON') from None
    token = body.get("refresh_token") if isinstance(body, dict) else None
    state = server(request)
    return {"access_token": await run_in_threadpool(refresh, state, project, token)}


@router.get("/users/me")
def who_am_i(access: Viewer) -> dict[str, Any]:
    return {"id": access.user, "name": access.user, "email": None}


@router.get("/project-information")
def project_information(access: Viewer) -> dict[str, Any]:
    return {
        "name": access.project,
        "included_folders": [],
        "requirements_path": None,
        "language": "python:3.11-slim",
    }


# ---- pipelines and steps -----------------------------------------------------------


def _pipeline_json(name: str, definition: dict[str, Any], commit: str, kind: str) -> dict[str, Any]:
    key = "pipeline_name" if kind == "pipeline" else "step_name"
    parameters = {
        key: name,
        "function_path": definition.get("function_path"),
        "function_name": definition.get("function_name"),
        "description": definition.get("description"),
        "inputs": definition.get("inputs", []),
        "outputs": definition.get("outputs", []),
        "container_config": definition.get("container_config", {}),
    }
    if kind == "pipeline" and definition.get("step_name"):
        parameters["step_name"] = definition["step_name"]
    return {
        "parameters": parameters,
        "creation_info": {
            "created_at": definition.get("created_at"),
            "created_by": definition.get("created_by"),
            "commit_id": commit,
            "status": "ready",
            "origin": "local_folder",
            "pipeline_template": None,
        },
    }


async def _create_from_form(request: Request, access: Any, kind: str) -> dict[str, Any]:
    state = server(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        if not isinstance(body, dict):
            raise bad_input("the body is not a JSON object")
        if body.get("pipeline_template_name"):
            raise unsupported("Pipeline templates")
        steps = body.get("step_names")
        if kind == "pipeline" and isinstance(steps, list) and len(steps) == 1:
            name = definitions.check_name(str(body.get("pipeline_name", "")))
            step = definitions.check_name(str(steps[0]), "step")
            repo = state.config.repo_dir(access.project)
            commit = await run_in_threadpool(definitions.from_step, repo, name, step, access.user)
            _, definition = definitions.get(repo, "pipeline", name)
            return _pipeline_json(name, definition, commit, kind)
        raise bad_input("create a pipeline from a function (a form) or from exactly one step")
    fields, files = await _form(request)
    key = "pipeline_name" if kind == "pipeline" else "step_name"
    name = definitions.check_name(str(fields.get(key, "")), kind)
    config = fields.get("container_config") or {}
    if not isinstance(config, dict):
        raise bad_input("container_config must be a set of fields")
    if config.get("dockerfile_path") or config.get("repository_url"):
        raise unsupported("Dockerfiles and git repositories as a pipeline's source")
    if not fields.get("function_path") or not fields.get("function_name"):
        raise bad_input("function_path and function_name are required")
    definition = {
        "name": name,
        "function_path": str(fields["function_path"]),
        "function_name": str(fields["function_name"]),
        "description": fields.get("description"),
        "inputs": definitions.check_io(io_list(fields.get("inputs"), "inputs", True), "input"),
        "outputs": definitions.check_io(io_list(fields.get("outputs"), "outputs", False), "output"),
        "container_config": {
            k: v
            for k, v in config.items()
            if k in ("requirements_path", "included_folders", "language")
        },
        **definitions.stamp(access.user),
    }
    archive = files.get("step_file")
    code = await run_in_threadpool(unpack, archive) if archive else []
    repo = state.config.repo_dir(access.project)
    commit = await run_in_threadpool(definitions.create, repo, kind, definition, code)
    return _pipeline_json(name, definition, commit, kind)


@router.post("/pipelines", status_code=201)
async def create_pipeline(request: Request, access: Member) -> dict[str, Any]:
    """A pipeline from a function: the code folder (a gzipped tar) and its declaration."""
    return await _create_from_form(request, access, "pipeline")


@router.post("/steps", status_code=201)
async def create_step(request: Request, access: Member) -> dict[str, Any]:
    """A step from a function (craft-ai-sdk 0.72.1), the same way as a pipeline."""
    return await _create_from_form(request, access, "step")


def _list(request: Request, access: Viewer, kind: str) -> list[dict[str, Any]]:
    repo = server(request).config.repo_dir(access.project)
    items = []
    for name in definitions.names(repo, kind):
        _, definition = definitions.get(repo, kind, name)
        items.append(
            {f"{kind}_name": name, "created_at": definition.get("created_at"), "status": "ready"}
        )
    return items


@router.get("/pipelines")
def list_pipelines(request: Request, access: Viewer) -> list[dict[str, Any]]:
    return _list(request, access, "pipeline")


@router.get("/steps")
def list_steps(request: Request, access: Viewer) -> list[dict[str, Any]]:
    return _list(request, access, "step")


@router.get("/pipelines/{name}")
def get_pipeline(request: Request, access: Viewer, name: str) -> dict[str, Any]:
    """A pipeline; ready as soon as it is created (its environment is built, once per
    requirements digest, by the first execution that needs it)."""
    repo = server(request).config.repo_dir(access.project)
    commit, definition = definitions.get(repo, "pipeline", name)
    return _pipeline_json(name, definition, commit, "pipeline")


@router.get("/steps/{name}")
def get_step(request: Request, access: Viewer, name: str) -> dict[str, Any]:
    repo = server(request).config.repo_dir(access.project)
    commit, definition = definitions.get(repo, "step", name)
    return _pipeline_json(name, definition, commit, "step")


@router.delete("/pipelines/{name}")
def delete_pipeline(
    request: Request, access: Member, name: str, force_deployments_deletion: bool = False
) -> dict[str, Any]:
    """Refused while deployments serve the pipeline, unless forced (which deletes them:
    a lead's doing)."""
    from conveyor.server.craft import deploy

    state = server(request)
    repo = state.config.repo_dir(access.project)
    definitions.get(repo, "pipeline", name)
    lead = role_at_least(access.role, "lead")
    deleted = deploy.release(state, access.project, name, force_deployments_deletion, lead)
    definitions.delete(repo, "pipeline", name)
    return {"pipeline": {"name": name}, "deployments": deleted}


@router.delete("/steps/{name}")
def delete_step(request: Request, access: Member, name: str) -> dict[str, Any]:
    repo = server(request).config.repo_dir(access.project)
    definitions.delete(repo, "step", name)
    return {"step_name": name}


@router.post("/pipelines/{name}/logs")
@router.post("/steps/{name}/logs")
def creation_logs(request: Request, access: Viewer, name: str) -> list[dict[str, Any]]:
    """Creation is a commit: nothing to log (the environment's build is in the first
    execution's ``environment`` step)."""
    return []


# ---- executions --------------------------------------------------------------------


@router.post("/pipelines/{name}/run")
async def run_pipeline(request: Request, access: Member, name: str) -> dict[str, Any]:
    """Queue an execution: typed inputs from ``json_inputs``, files as parts."""
    state = server(request)
    repo = state.config.repo_dir(access.project)
    commit, definition = await run_in_threadpool(definitions.get, repo, "pipeline", name)
    fields, files = await _form(request)
    for mapping in ("inputs_mapping", "outputs_mapping"):
        if fields.get(mapping) not in (None, "", "[]"):
            raise unsupported("Input and output mappings of a run")
    text = fields.get("json_inputs") or "{}"
    if not isinstance(text, str) or len(text) > MAX_INPUTS_TEXT:
        raise bad_input(f"json_inputs must be JSON text of at most {MAX_INPUTS_TEXT} bytes")
    try:
        values = json.loads(text)
    except ValueError:
        raise bad_input("json_inputs is not JSON") from None
    if not isinstance(values, dict):
        raise bad_input("json_inputs must be a JSON object")
    checked = typed_inputs(definition, values, files)
    executed = await run_in_threadpool(definitions.execution_commit, repo, commit, checked, files)
    ref = definitions.KINDS["pipeline"] + name

    def queue() -> str:
        run_id = state.db.queue.enqueue(access.project, ref, executed, "craft", access.user)
        definitions.keep(repo, run_id, executed)
        return run_id

    run_id = await run_in_threadpool(queue)
    state.wake.set()
    return {"execution_id": run_id}


@router.get("/pipelines/{name}/executions")
def list_executions(request: Request, access: Viewer, name: str) -> list[dict[str, Any]]:
    state = server(request)
    _, definition = definitions.get(state.config.repo_dir(access.project), "pipeline", name)
    runs = executions.for_pipeline(state, access.project, name)
    out = []
    for run in runs:
        data = executions.to_json(state, run, definition, values=False)
        data.pop("inputs")
        data.pop("outputs")
        out.append(data)
    return out


@router.get("/pipelines/{name}/executions/latest")
def latest_execution(request: Request, access: Viewer, name: str) -> Response:
    state = server(request)
    definitions.get(state.config.repo_dir(access.project), "pipeline", name)
    runs = executions.for_pipeline(state, access.project, name)
    body = {"execution_id": runs[0].id, "status": executions.status_of(runs[0])} if runs else None
    return JSONResponse(body)


@router.get("/executions/{execution_id}")
def get_execution(request: Request, access: Viewer, execution_id: str) -> dict[str, Any]:
    state = server(request)
    run = executions.get(state, access.project, execution_id)
    return executions.to_json(state, run, None)


@router.delete("/executions/{execution_id}")
def delete_execution(request: Request, access: Member, execution_id: str) -> dict[str, Any]:
    state = server(request)
    run = executions.get(state, access.project, execution_id)
    executions.delete(state, run)
    return {"execution_id": run.id}


@router.get("/executions/{execution_id}/outputs")
async def execution_outputs(
    request: Request,
    access: Viewer,
    execution_id: str,
    wait_for_completion: Annotated[bool, Query()] = False,
) -> Response:
    """The outputs; with ``wait_for_completion`` the request is held while the execution
    runs (its status read once a second), then answered with a 307 to itself, which the
    SDK follows by asking again."""
    state = server(request)
    run = await run_in_threadpool(executions.get, state, access.project, execution_id)
    if wait_for_completion:
        found = await held(request, state, run)
        if isinstance(found, Response):
            return found
        run = found
    data = await run_in_threadpool(executions.to_json, state, run, None)
    if run.status.finished and executions.status_of(run) != "Succeeded":
        raise CraftError(
            500,
            "ExecutionFailed",
            f"the execution {run.id} ended {executions.status_of(run).lower()}"
            + (f": {data['error']}" if data.get("error") else "")
            + "; read its logs with get_pipeline_execution_logs",
        )
    return JSONResponse({"execution_id": run.id, "outputs": data["outputs"]})


async def held(request: Request, state: ServerState, run: QueuedRun) -> QueuedRun | Response:
    """The run once it has ended, reading its status once a second; after ``HOLD``
    seconds a 307 to the same URL (the SDK, and any HTTP client, asks again)."""
    waited = 0.0
    while not run.status.finished:
        if waited >= HOLD or await request.is_disconnected():
            return JSONResponse(
                {"message": f"execution {run.id} is {executions.status_of(run).lower()}"},
                status_code=307,
                headers={"Location": str(request.url)},
            )
        await asyncio.sleep(POLL)
        waited += POLL
        found = await run_in_threadpool(state.db.queue.get, run.id)
        if found is None:
            raise not_found(f"the execution {run.id} was deleted")
        run = found
    return run


def _file_or_value(
    request: Request, access: Viewer, execution_id: str, name: str, output: bool
) -> Response:
    state = server(request)
    run = executions.get(state, access.project, execution_id)
    definition = definitions.definition_at(state.config.repo_dir(run.project), run.commit)
    key = "outputs" if output else "inputs"
    declared = {i["name"]: i["data_type"] for i in definition.get(key, [])}
    if name not in declared:
        raise not_found(f"the pipeline has no {key[:-1]} {name[:100]!r}")
    if output:
        if not run.status.finished:
            raise CraftError(409, "Conflict", f"the execution {run.id} has not ended")
        if declared[name] == "file":
            path = executions.output_path(state, run, f"files/{name}")
            if path is None:
                raise not_found(f"the execution {run.id} wrote no file for output {name!r}")
            return Response(path.read_bytes(), media_type="application/octet-stream")
        return JSONResponse(executions.output_values(state, run).get(name))
    given = executions.inputs_at(state, run)
    if declared[name] == "file":
        from conveyor.vcs.git import read_file

        data = read_file(state.config.repo_dir(run.project), run.commit, f"craft/files/{name}")
        if data is None:
            raise not_found(f"the execution {run.id} was given no file for input {name!r}")
        return Response(data, media_type="application/octet-stream")
    return JSONResponse(given["values"].get(name))


@router.get("/executions/{execution_id}/outputs/{name}")
def execution_output(request: Request, access: Viewer, execution_id: str, name: str) -> Response:
    return _file_or_value(request, access, execution_id, name, output=True)


@router.get("/executions/{execution_id}/inputs/{name}")
def execution_input(request: Request, access: Viewer, execution_id: str, name: str) -> Response:
    return _file_or_value(request, access, execution_id, name, output=False)


@router.post("/executions/{execution_id}/logs")
async def execution_logs(request: Request, access: Viewer, execution_id: str) -> list[Any]:
    """The logs, as the SDK reads them: one list per pipeline (here, one)."""
    try:
        body = await request.json()
    except ValueError:
        body = {}
    limit = body.get("limit") if isinstance(body, dict) else None
    state = server(request)
    run = await run_in_threadpool(executions.get, state, access.project, execution_id)
    lines = await run_in_threadpool(
        executions.log_lines, state, run, limit if isinstance(limit, int) and limit > 0 else None
    )
    return [lines]


@router.get("/metrics/single-value")
def get_metrics(
    request: Request,
    access: Viewer,
    page: Annotated[int, Query(ge=1)] = 1,
    items_per_page: Annotated[int, Query(ge=1, le=5000)] = 5000,
) -> dict[str, Any]:
    """Metrics recorded by executions (``record_metric_value``), a page at a time."""
    from conveyor.server.craft.metrics import single_values

    names = ("name", "pipeline_name", "deployment_name", "execution_id")
    params = request.query_params
    filters = {n: params[f"filters[{n}]"] for n in names if f"filters[{n}]" in params}
    found = single_values(server(request), access.project, filters)
    start = (page - 1) * items_per_page
    return {"metrics": found[start : start + items_per_page], "total_count": len(found)}


@router.get("/environment-info")
def environment_info() -> Response:
    """Asked without a token by ``get_vector_database_credentials``: named, not served."""
    raise unsupported("Vector databases")


# ---- the rest of the SDK's surface: named refusals ---------------------------------

FEATURES = {
    "data-store": "Data store operations",
    "environment-variables": "Environment variables",
    "pipeline-templates": "Pipeline templates",
    "resource-metrics": "Resource metrics",
    "metrics": "Metric lists read, and metrics written over HTTP (inside an execution "
    "record_metric_value lands in the run's metrics; get_metrics reads them)",
    "environments": "Vector database credentials",
    "users": "Other users' profiles",
}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_served(access: Viewer, rest: str) -> Response:
    first = rest.split("/", 1)[0]
    if first in FEATURES:
        raise unsupported(FEATURES[first])
    raise not_found(f"the Craft AI API has no route /{rest[:200]} (in Conveyor)")
