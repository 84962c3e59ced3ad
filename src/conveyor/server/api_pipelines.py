"""REST: a project's Pachyderm pipelines and their jobs (``conveyor pipeline|job|datum
... --remote``).

Leads create, update and delete pipelines (each then gets a job, as in Pachyderm);
members queue a job; viewers read pipelines, jobs and datums. A
spec is data: the request carries the spec file's text (capped like a local spec file,
``MAX_SPEC``), read by the same reader as locally (its size and depth limits), and a
wrong spec is a 422 whose detail names ``file:line:col``. Pipelines and jobs are kept as
locally (``sdk/pachyderm_state``), under the project's directory on the server, and
their output commits are the project's datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from conveyor.errors import SpecError
from conveyor.sdk.datasets.refs import check_name
from conveyor.sdk.pachyderm_jobs import MAX_SPEC, Pipelines
from conveyor.server.api_datasets import datasets_of
from conveyor.server.auth import Access, lead, member, server_state, viewer
from conveyor.server.pachyderm_notice import worker_notice
from conveyor.server.state import ServerState

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["pipelines"])
Viewer = Annotated[Access, Depends(viewer)]
Member = Annotated[Access, Depends(member)]
Lead = Annotated[Access, Depends(lead)]
State = Annotated[ServerState, Depends(server_state)]
STEPS = ("build", "tag", "push", "update", "run")  # of a CI flow, each with its log
JobId = Annotated[str, Query(max_length=64)]


class SpecBody(BaseModel):
    spec: str = Field(max_length=MAX_SPEC, description="The spec file's text (JSON or YAML)")
    file: str = Field(
        default="pipeline.json", max_length=255, description="Its name, as errors give it"
    )
    is_json: bool | None = Field(default=None, description="JSON or YAML; none: guessed")
    reprocess: bool = False


def pipelines_of(state: ServerState, project: str) -> Pipelines:
    datasets = datasets_of(state, project)
    return Pipelines(datasets.project, datasets, ticks=True)  # the clock ticks cron inputs


def _record(state: ServerState, project: str, body: SpecBody, update: bool) -> dict[str, Any]:
    is_json = body.is_json
    if is_json is None:
        is_json = body.file.endswith(".json") or body.spec.lstrip()[:1] in ("{", "[")
    shown = body.file.replace("\n", " ")
    try:
        names = pipelines_of(state, project).create_text(
            body.spec, shown, is_json, update, body.reprocess
        )
    except SpecError as exc:
        raise HTTPException(422, str(exc)) from None
    for name in names:
        state.pipeline_changed(project, name)
    return {"pipelines": names, "updated": update, "reprocess": body.reprocess}


@router.post("/pipelines", status_code=201)
def create_pipelines(access: Lead, state: State, body: SpecBody) -> dict[str, Any]:
    """Create the pipelines of a spec file, and each one's output dataset (leads)."""
    return _record(state, access.project, body, update=False)


@router.put("/pipelines")
def update_pipelines(access: Lead, state: State, body: SpecBody) -> dict[str, Any]:
    """A new version of existing pipelines from a spec file (leads)."""
    return _record(state, access.project, body, update=True)


@router.get("/pipelines")
def list_pipelines(access: Viewer, state: State) -> list[dict[str, Any]]:
    """The project's pipelines, their spec version and last job."""
    return pipelines_of(state, access.project).summaries()


@router.get("/pipelines/{pipeline}")
def inspect_pipeline(access: Viewer, state: State, pipeline: str) -> dict[str, Any]:
    """A pipeline: its spec versions, inputs, output and recent jobs."""
    return pipelines_of(state, access.project).inspect(check_name(pipeline, "pipeline"))


@router.delete("/pipelines/{pipeline}")
def delete_pipeline(
    access: Lead, state: State, pipeline: str, keep_dataset: bool = False
) -> dict[str, Any]:
    """Delete a pipeline and (unless ``keep_dataset``) its output dataset (leads)."""
    pipelines_of(state, access.project).delete(check_name(pipeline, "pipeline"), keep_dataset)
    return {"deleted": pipeline, "dataset_kept": keep_dataset}


@router.post("/pipelines/{pipeline}/run", status_code=202)
def run_pipeline(access: Member, state: State, pipeline: str) -> dict[str, Any]:
    """Queue a job of the pipeline over its inputs' heads (members): only new or changed
    datums run; ``job list`` shows it once it starts."""
    pipelines_of(state, access.project).state.versions(check_name(pipeline, "pipeline"))
    state.pipeline_changed(access.project, pipeline)
    return {"pipeline": pipeline, "queued": True}


@router.get("/jobs")
def list_jobs(
    access: Viewer, state: State, pipeline: Annotated[str | None, Query(max_length=63)] = None
) -> list[dict[str, Any]]:
    """Jobs, newest first (of one pipeline when named), without their datums."""
    name = None if pipeline is None else check_name(pipeline, "pipeline")
    jobs = pipelines_of(state, access.project).jobs(name)
    return [_job_json(j, state.config.data) for j in jobs]


@router.get("/jobs/pending")
def pending_jobs(access: Viewer, state: State) -> dict[str, Any]:
    """The triggers that owe jobs and have not run yet, oldest first; ``notice`` says
    when they wait for a ``conveyor worker`` that has not asked for work lately (the
    project's ``pachyderm_jobs`` is ``worker``), else null."""
    fields = ("kind", "name", "branch", "status", "created_at")
    triggers = [{k: row[k] for k in fields} for row in state.db.pachyderm.pending(access.project)]
    waiting, notice = worker_notice(state, access.project)
    return {"triggers": triggers, "unattended": waiting, "notice": notice}


@router.get("/jobs/{job_id}")
def inspect_job(access: Viewer, state: State, job_id: str) -> dict[str, Any]:
    """A job (an id or a 4+ character prefix): inputs, spec version, output commit, error."""
    return _job_json(pipelines_of(state, access.project).job(_job_id(job_id)), state.config.data)


@router.get("/jobs/{job_id}/datums")
def list_datums(access: Viewer, state: State, job_id: str) -> list[dict[str, Any]]:
    """The datums of a job: state, id, files, duration; ``log`` is the API path of the
    datum's log when it has one."""
    found = pipelines_of(state, access.project).job(_job_id(job_id))
    base = f"/api/v1/projects/{access.project}/jobs/{found['id']}/datums"
    return [
        {**row, "log": f"{base}/{row['id']}/log" if row.get("log") else None}
        for row in found["datums"]
    ]


@router.get("/jobs/{job_id}/datums/{datum_id}/log")
def datum_log(access: Viewer, state: State, job_id: str, datum_id: str) -> FileResponse:
    """A datum's log (the output of its tries and of ``err_cmd``)."""
    pipelines = pipelines_of(state, access.project)
    found = pipelines.job(_job_id(job_id))
    rows = [r for r in found["datums"] if r["id"] == datum_id and r.get("log")]
    logs = (pipelines.state.root / "logs").resolve()
    path = Path(rows[0]["log"]).resolve() if rows else None
    if path is None or not path.is_relative_to(logs) or not path.is_file():
        raise HTTPException(404, f"datum {datum_id[:64]!r} of job {found['id']} has no log")
    return FileResponse(path, media_type="text/plain; charset=utf-8")


@router.get("/ci")
def list_ci(
    access: Viewer, state: State, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dict[str, Any]]:
    """The CI flows of pushes (``pachyderm_ci``), newest first: commit, image, pushed
    digest, state, error, and each step (build cached or not, the pipelines updated, the
    jobs run) with the API path of its log."""
    from conveyor.sdk.pachyderm_ci import PipelineCi

    pipelines = pipelines_of(state, access.project)
    base = f"/api/v1/projects/{access.project}/ci"
    shown = []
    for record in PipelineCi(pipelines.project, pipelines).records(limit):
        steps = [{**s, "log": f"{base}/{record['id']}/logs/{s['name']}"} for s in record["steps"]]
        for step in steps:
            for spec in step.get("specs", []):
                spec.pop("spec", None)  # a path of the server's
            if step.get("error"):  # scrubbed when made; a record made before, here
                step["error"] = _no_data_path(step["error"], state.config.data)
        error = record.get("error")
        error = _no_data_path(error, state.config.data) if error else error
        shown.append({**record, "steps": steps, "error": error})
    return shown


@router.get("/ci/{ci_id}/logs/{step}")
def ci_log(access: Viewer, state: State, ci_id: str, step: str) -> FileResponse:
    """The log of one step of a CI flow (build, tag, push, update, run)."""
    from conveyor.sdk.pachyderm_ci import PipelineCi

    pipelines = pipelines_of(state, access.project)
    root = PipelineCi(pipelines.project, pipelines).root
    if not (ci_id.isalnum() and ci_id.isascii() and len(ci_id) <= 64) or step not in STEPS:
        raise HTTPException(404, "there is no such CI log")
    path = root / ci_id / f"{step}.log"
    if not path.is_file():
        raise HTTPException(404, f"CI {ci_id} has no {step} log")
    return FileResponse(path, media_type="text/plain; charset=utf-8")


def _no_data_path(text: str, data_dir: Path) -> str:
    return str(text).replace(str(data_dir), "<data>")


def _job_id(text: str) -> str:
    if not (4 <= len(text) <= 64 and text.isalnum() and text.isascii()):
        raise HTTPException(404, f"there is no job {text[:64]!r}")
    return text


def _job_json(job: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in job["datums"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    data = {k: v for k, v in job.items() if k not in ("datums", "pid")}
    data["datum_counts"] = counts
    if data.get("error"):  # a failed datum's log is named by its path: not the server's
        data["error"] = str(data["error"]).replace(f"{data_dir}/", "")
    return data
