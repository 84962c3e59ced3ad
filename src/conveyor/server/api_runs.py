"""REST: runs, step runs, logs, artifacts and lineage of a project."""

from __future__ import annotations

import asyncio
import base64
import json
import posixpath
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from conveyor.domain.runrefs import run_number
from conveyor.domain.states import RunStatus
from conveyor.errors import UsageError
from conveyor.metadata.records import RunRecord, StepRunRecord
from conveyor.sdk.logs import MAX_SINCE, parse_since
from conveyor.server.auth import Access, member, server, server_state, viewer
from conveyor.server.db.accounts import role_at_least
from conveyor.server.db.queue import QueuedRun
from conveyor.server.logstream import log_response
from conveyor.server.masking import Masker, masked_chunks, scan_file
from conveyor.server.results import ResultFile, withheld_text
from conveyor.server.state import ServerState
from conveyor.server.triggers import load_spec_at
from conveyor.vcs.git import check_revision, resolve

if TYPE_CHECKING:
    from conveyor.store.cas import ContentStore

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["runs"])
_PREFIX = re.compile(r"^[0-9a-f]{4,40}$")
Viewer = Annotated[Access, Depends(viewer)]
Member = Annotated[Access, Depends(member)]
State = Annotated[ServerState, Depends(server_state)]
MAX_TAIL = 1_000_000


class RunCreate(BaseModel):
    ref: str = Field(default="main", description="A branch, tag or commit of the project.")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


def get_run(state: ServerState, project: str, run_id: str) -> QueuedRun:
    """A run by id, a unique prefix of one (4 characters or more), its number in the
    project (``#12``, or ``12`` under 4 digits) or ``latest``."""
    queue = state.db.queue
    try:
        number = run_number(run_id)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from None
    if number is not None:
        return _numbered(state, project, number)
    run = queue.get(run_id)
    if run is None and (run_id == "latest" or _PREFIX.fullmatch(run_id)):
        found = queue.find(project, None if run_id == "latest" else run_id)
        if len(found) > 1 and run_id != "latest":
            ids = ", ".join(found[:5])
            raise HTTPException(409, f"{run_id!r} matches several runs ({ids}); give more")
        run = queue.get(found[0]) if found else None
    if run is None or run.project != project:
        if run_id == "latest":
            raise HTTPException(404, f"project {project!r} has no runs yet")
        raise HTTPException(404, f"project {project!r} has no run {run_id[:100]!r}")
    return run


def _numbered(state: ServerState, project: str, number: int) -> QueuedRun:
    """The project's run of that number (every project has a run 1: the queue says whose)."""
    for record in state.db.records.runs_numbered(number):
        run = state.db.queue.get(record.id)
        if run is not None and run.project == project:
            return run
    raise HTTPException(404, f"project {project!r} has no run #{number}")


_UNREAD: Any = object()


def run_json(
    state: ServerState, run: QueuedRun, steps: bool = True, record: RunRecord | None = _UNREAD
) -> dict[str, Any]:
    """The queue row (its status is the run's, queued or not) with what the run's record
    says in ``conveyor show --json``'s words (``number``, ``pipeline``, ``executor``;
    null before a worker starts it) and, with ``steps``, the step runs and dataset
    commits of :func:`conveyor.sdk.inspect.record_json`: one run shape for both."""
    from conveyor.sdk.inspect import record_json

    data = run.to_json()
    data["error"] = public_text(state, data["error"])
    if record is _UNREAD:
        record = state.db.records.get_run(run.id)
    shown = record_json(state.db.records, record, steps) if record else {}
    for key in _FROM_RECORD:
        data[key] = shown.get(key)
    if steps:
        data["steps"] = [_public_step(state, run, s) for s in shown.get("steps", [])]
        data["datasets"] = shown.get("datasets", [])
    return data


_FROM_RECORD = ("number", "pipeline", "executor", "pipeline_file")


def steps_json(state: ServerState, run: QueuedRun) -> list[dict[str, Any]]:
    """The run's step runs as ``show --json`` has them, each with the API path of its log
    instead of where the server keeps it."""
    from conveyor.sdk.inspect import steps_json as recorded

    return [_public_step(state, run, s) for s in recorded(state.db.records, run.id)]


def _public_step(state: ServerState, run: QueuedRun, data: dict[str, Any]) -> dict[str, Any]:
    data["error"] = public_text(state, data["error"])
    if isinstance(data.get("ran_on"), dict):
        data["ran_on"] = {k: public_text(state, str(v)) for k, v in data["ran_on"].items()}
    logs = f"/api/v1/projects/{run.project}/runs/{run.id}/logs/{data['id']}"
    data["log"] = logs if data["log"] else None
    return data


def public_text(state: ServerState, text: str | None) -> str | None:
    """A message without the server's data directory in it (paths stay relative)."""
    return text.replace(f"{state.config.data}/", "") if text else text


@router.get("/runs")
def list_runs(
    access: Viewer,
    state: State,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: RunStatus | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
) -> dict[str, Any]:
    """Runs of the project, newest first, a page at a time: ``runs``, ``total`` (runs
    matching the filter) and ``next_cursor`` (null on the last page)."""
    page = state.db.queue.page(access.project, limit, status, cursor)
    if page is None:
        raise HTTPException(
            422, f"{cursor!r} is not a cursor of this list: pass the next_cursor of a page"
        )
    runs, total, after = page
    records = state.db.records.get_runs(r.id for r in runs)  # one read for the page
    return {
        "runs": [run_json(state, r, False, records.get(r.id)) for r in runs],
        "total": total,
        "next_cursor": after,
    }


@router.post("/runs", status_code=201)
def create_run(access: Member, state: State, body: RunCreate) -> dict[str, Any]:
    """Queue a run of the pipeline at a branch, tag or commit (a manual trigger)."""
    repo = state.config.repo_dir(access.project)
    try:
        check_revision(body.ref)
    except UsageError as exc:
        raise HTTPException(400, str(exc)) from exc
    commit = resolve(repo, body.ref)
    if commit is None:
        raise HTTPException(400, f"{body.ref!r} names no branch, tag or commit of the project")
    ref = body.ref if body.ref.startswith("refs/") else _full_ref(repo, body.ref)
    queue = state.db.queue
    params = dict(body.params)  # typed, as JSON gives them; the compiler checks each
    try:
        load_spec_at(state, access.project, commit)
    except Exception as exc:
        run_id = queue.enqueue(
            access.project,
            ref,
            commit,
            "manual",
            access.user.name,
            params,
            RunStatus.FAILED,
            str(exc),
        )
    else:
        run_id = queue.enqueue(access.project, ref, commit, "manual", access.user.name, params)
        state.wake.set()
    return run_json(state, get_run(state, access.project, run_id), steps=False)


def _full_ref(repo: Path, name: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if resolve(repo, prefix + name):
            return prefix + name
    return name


@router.get("/runs/{run_id}", response_model=None)
async def show_run(request: Request, project: str, run_id: str) -> Response:
    """A run with its step runs."""
    # the route clients poll. The token check and the run key lookup are single indexed
    # queries, cheaper on the event loop than a thread hop; only building a run's JSON
    # (its step runs, any number) goes to the thread pool. No response validation: the
    # body is encoded here, and a finished run's is kept.
    access = viewer(request, project)
    state = server(request)
    cached = state.finished.get(run_id)
    # a finished run never changes, but retention may delete it (one key lookup to know)
    if cached is not None and cached[0] == project and state.db.queue.get(run_id) is not None:
        return Response(cached[1], media_type="application/json")
    body = await run_in_threadpool(run_body, state, access.project, run_id)
    return Response(body, media_type="application/json")


def run_body(state: ServerState, project: str, run_id: str) -> bytes:
    """A run's JSON with its step runs, kept once the run is final."""
    data = run_json(state, get_run(state, project, run_id))
    body = json_bytes(data)
    if data["status"] in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):  # final
        state.finished.put(data["id"], (project, body))
    return body


def json_bytes(data: Any) -> bytes:
    """``data`` encoded as FastAPI's JSONResponse would (anything not plain JSON through
    its encoder)."""
    return json.dumps(
        data, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=jsonable_encoder
    ).encode()


@router.post("/runs/{run_id}/cancel")
def cancel_run(access: Member, state: State, run_id: str) -> dict[str, Any]:
    """Cancel a queued run, or ask its worker to cancel a running one (members: their own)."""
    run = get_run(state, access.project, run_id)
    run_id = run.id
    if run.who != access.user.name and not role_at_least(access.role, "lead"):
        raise HTTPException(403, "members cancel only their own runs; ask a lead")
    if run.status.finished:
        raise HTTPException(409, f"run {run_id} already {run.status}: there is nothing to cancel")
    status = state.db.queue.request_cancel(run_id)
    if status not in (RunStatus.CANCELLED, RunStatus.RUNNING):  # it ended between the reads
        raise HTTPException(409, f"run {run_id} already {status}: there is nothing to cancel")
    if status == RunStatus.CANCELLED:  # never started: no worker tells its forge
        from conveyor.server.forge import follow_run

        follow_run(state.statuses, run_id, status)
    return {"id": run_id, "status": status, "cancel_requested": status == RunStatus.RUNNING}


@router.post("/runs/{run_id}/resume", status_code=201)
def resume_run(access: Member, state: State, run_id: str) -> dict[str, Any]:
    """Queue an interrupted (or failed, or cancelled) run again at the same commit; steps
    that finished before come from the cache."""
    run = get_run(state, access.project, run_id)
    run_id = run.id
    if not run.status.finished:
        raise HTTPException(409, f"run {run_id} is still {run.status}")
    new_id = state.db.queue.enqueue(
        access.project, run.ref, run.commit, f"resume:{run_id}", access.user.name, run.params
    )
    state.wake.set()
    return run_json(state, get_run(state, access.project, new_id), steps=False)


@router.get("/runs/{run_id}/steps")
def list_steps(access: Viewer, state: State, run_id: str) -> list[dict[str, Any]]:
    """The step runs of a run."""
    return steps_json(state, get_run(state, access.project, run_id))


@router.get("/runs/{run_id}/logs/{step_id}")
async def step_log(
    access: Viewer,
    state: State,
    run_id: str,
    step_id: str,
    follow: bool = True,
    tail: Annotated[int | None, Query(ge=0, le=MAX_TAIL, description="The last N lines.")] = None,
    since: Annotated[
        str | None,
        Query(max_length=MAX_SINCE, description="Only if the step ran since (10m, ISO time)."),
    ] = None,
) -> StreamingResponse:
    """A step's output (secrets masked), 64 KiB at a time; while the step runs, the
    stream follows it. ``since``: empty unless the step was running at or after then."""
    try:
        after = parse_since(since, time.time()) if since is not None else None
    except UsageError as exc:
        raise HTTPException(422, str(exc).removeprefix("--")) from None
    run = await asyncio.to_thread(get_run, state, access.project, run_id)
    return await log_response(state, run, step_id, follow, tail, after)


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(
    access: Viewer,
    state: State,
    run_id: str,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
) -> dict[str, Any]:
    """Every output file of the run (directories listed file by file), a page at a time:
    ``files``, ``total`` and ``next_cursor`` (null on the last page)."""
    run = get_run(state, access.project, run_id)
    files = run_files(state, run)
    start = 0
    if cursor is not None:
        keys = [f"{f['step']}\0{f['path']}" for f in files]
        try:
            start = keys.index(_decode_cursor(cursor)) + 1
        except ValueError:
            raise HTTPException(
                422, f"{cursor!r} is not a cursor of this list: pass the next_cursor of a page"
            ) from None
    page = files[start : start + limit]
    more = start + limit < len(files)
    after = _encode_cursor(f"{page[-1]['step']}\0{page[-1]['path']}") if more else None
    return {"files": page, "total": len(files), "next_cursor": after}


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeError):
        return ""


def run_files(state: ServerState, run: QueuedRun) -> list[dict[str, Any]]:
    """The run's output files, step by step in run order."""

    return output_files(state.config.open_store(), state.db.records.step_runs(run.id))


def output_files(store: ContentStore, records: list[StepRunRecord]) -> list[dict[str, Any]]:
    """The output files of these step runs (directories file by file), in run order."""
    never = float("inf")
    files = []
    for step in sorted(records, key=lambda s: s.started_at or s.ended_at or never):
        for output in step.outputs:
            if output.kind == "tree":
                files += [
                    {
                        "step": step.step_id,
                        "path": posixpath.join(output.path, e.path),
                        "digest": e.digest,
                        "size": e.size,
                    }
                    for e in store.read_tree(output.digest)
                ]
            else:
                files.append(
                    {
                        "step": step.step_id,
                        "path": output.path,
                        "digest": output.digest,
                        "size": output.size,
                    }
                )
    return files


@router.get("/runs/{run_id}/artifacts/{path:path}")
def download_artifact(access: Viewer, state: State, run_id: str, path: str) -> Response:
    """The content of one output file (or a file inside an output directory)."""
    return artifact_response(*artifact_source(access, state, run_id, path))


def artifact_response(source: Path, norm: str, masker: Masker) -> Response:
    """One stored output file as a download: masked where it holds a secret (text), or
    withheld (binary)."""
    found, text = scan_file(source, masker)
    if found and not text:
        item = ResultFile(norm, source.name, source.stat().st_size)
        return Response(withheld_text(item), media_type="text/plain; charset=utf-8")
    if found:
        return StreamingResponse(masked_chunks(source, masker), media_type="text/plain")
    return FileResponse(
        source, filename=posixpath.basename(norm), media_type="application/octet-stream"
    )


def artifact_source(
    access: Access, state: ServerState, run_id: str, path: str
) -> tuple[Path, str, Masker]:
    """Where the store keeps one output file of a run (or a file inside an output
    directory), its normalised path, and the masker of the project's secrets: whoever
    shows it masks it (text) or withholds it (binary), as in the result commit."""
    norm = output_path(path)
    run_id = get_run(state, access.project, run_id).id

    store = state.config.open_store()
    masker = Masker(state.secrets_for(access.project).values())
    return stored_output(store, state.db.records.step_runs(run_id), run_id, norm), norm, masker


def output_path(path: str) -> str:
    """A requested output path, normalised; 400 for one that leaves the project."""
    norm = posixpath.normpath(path)
    if path.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in path:
        raise HTTPException(400, f"{path[:200]!r} is not a path inside the project")
    return norm


def stored_output(
    store: ContentStore, records: list[StepRunRecord], run_id: str, norm: str
) -> Path:
    """Where the store keeps the output file ``norm`` of these step runs (404, or 410
    when the store collected it)."""
    for step in records:
        for output in step.outputs:
            if output.kind == "file" and output.path == norm:
                return stored_blob(store, output.digest, norm)
            if output.kind == "tree" and norm.startswith(output.path.rstrip("/") + "/"):
                inner = norm[len(output.path.rstrip("/")) + 1 :]
                for entry in store.read_tree(output.digest):
                    if entry.path == inner:
                        return stored_blob(store, entry.digest, norm)
    raise HTTPException(404, f"run {run_id} has no output {norm[:200]!r}")


def stored_blob(store: Any, digest: str, path: str) -> Path:
    """Where the store keeps ``digest`` (410 when the store collected it)."""
    found: Path | None = store.local_path(digest)  # an object store's blob comes down
    if found is None:
        raise HTTPException(410, f"the content of {path} is gone from the store (collected)")
    return found


@router.get("/lineage")
def lineage(
    access: Viewer, state: State, path: Annotated[str, Query(min_length=1)]
) -> dict[str, Any]:
    """Which runs of this project produced a path, from which inputs (and the dataset
    commits they came from), and what read it."""
    from conveyor.sdk.inspect import dataset_sources

    records = state.db.records
    ours = {r.id for r in state.db.queue.for_project(access.project, 10_000)}
    produced = []
    for run_id, step_id, output in records.outputs_at_path(path):
        if run_id not in ours:
            continue
        inputs = [{"path": i.path, "digest": i.digest} for i in records.inputs_of(run_id, step_id)]
        read = dataset_sources(records, run_id, [i["path"] for i in inputs])
        consumers = [
            {"run": r, "step": s, "path": i.path}
            for r, s, i in records.consumers(output.digest)
            if r in ours
        ]
        produced.append(
            {
                "run": run_id,
                "step": step_id,
                **output.to_json(),
                "inputs": inputs,
                "datasets": read,  # the dataset commits its inputs were checked out from
                "read_by": consumers,
            }
        )
    if not produced:
        raise HTTPException(404, f"no run of {access.project!r} produced {path!r}")
    return {"path": path, "produced_by": produced}
