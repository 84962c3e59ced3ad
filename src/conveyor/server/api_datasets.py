"""REST: a project's versioned datasets (``conveyor data`` over HTTP).

Viewers read (list, inspect, log, ls, glob, diff, files); members write commits (put or
delete a file, create or move a branch); leads create and delete datasets and delete
branches. A file is put as the raw request body (``PUT .../files/PATH``), many files as
a tar stream (``PUT .../tree``), each capped by the server's ``max_dataset_body``.
Datasets of every project share the server's records, each project under its own name
(``project/name``), and its store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConcurrencyError, NotFoundError
from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.refs import DatasetRef, check_name, parse_ref
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.datasets.tarstream import read_tar
from conveyor.server.auth import Access, lead, member, server_state, viewer
from conveyor.server.limits import spool_body
from conveyor.server.state import ServerState

router = APIRouter(prefix="/api/v1/projects/{project}/datasets", tags=["datasets"])
Viewer = Annotated[Access, Depends(viewer)]
Member = Annotated[Access, Depends(member)]
Lead = Annotated[Access, Depends(lead)]
State = Annotated[ServerState, Depends(server_state)]
Ref = Annotated[str, Query(max_length=200, description="A branch, commit id or prefix, ^ ~N")]
MAX_LOG = 1000


class DatasetCreate(BaseModel):
    name: str = Field(max_length=63)
    description: str = Field(default="", max_length=64 * 1024)


class BranchPut(BaseModel):
    head: str | None = Field(
        default=None, max_length=200, description="The commit (REF) it points at; none: empty"
    )


def datasets_of(state: ServerState, project: str, downstream: bool = False) -> Datasets:
    """The project's datasets; ``downstream``: each commit and branch move made through
    them queues the jobs of the pipelines downstream, in the commit's own transaction
    (a crash leaves both or neither: ``db/pachyderm_queue``)."""
    from conveyor.sdk.datasets.scoped import ScopedDatasets
    from conveyor.sdk.project import Project

    root = state.config.project_dir(project)
    records = state.db.records
    store = state.config.open_store()
    local = Project(root, state_dir=root / "datasets", records=records, store=store)
    on_change = state.db.pachyderm.on_commit(project) if downstream else None
    return Datasets(local, records=ScopedDatasets(records, project, on_change))


def _ref(dataset: str, ref: str | None, path: str = "") -> DatasetRef:
    check_name(dataset)
    at = f"@{ref}" if ref else ""
    return parse_ref(f"{dataset}{at}" + (f":{path}" if path else ""))


@router.get("")
def list_datasets(access: Viewer, state: State) -> list[dict[str, Any]]:
    """The project's datasets with their branches and master's size and file count."""
    return datasets_of(state, access.project).summaries()


@router.post("", status_code=201)
def create_dataset(access: Lead, state: State, body: DatasetCreate) -> dict[str, Any]:
    """Create an empty dataset (leads)."""
    return datasets_of(state, access.project).create(body.name, body.description).to_json()


@router.delete("/{dataset}")
def delete_dataset(access: Lead, state: State, dataset: str) -> dict[str, Any]:
    """Delete a dataset with its commits and branches (leads; blobs go at the next gc)."""
    datasets_of(state, access.project).delete(check_name(dataset))
    return {"deleted": dataset}


@router.get("/{dataset}")
def inspect_dataset(
    access: Viewer, state: State, dataset: str, ref: Ref | None = None, path: str = ""
) -> dict[str, Any]:
    """The dataset, its branches and a commit (size, file count, provenance)."""
    return datasets_of(state, access.project).inspect(_ref(dataset, ref, path))


@router.get("/{dataset}/log")
def dataset_log(
    access: Viewer,
    state: State,
    dataset: str,
    ref: Ref | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG)] = 50,
) -> list[dict[str, Any]]:
    """A commit and its ancestors, newest first."""
    chain = datasets_of(state, access.project).log(_ref(dataset, ref), limit)
    return [c.to_json() for c in chain]


@router.get("/{dataset}/ls")
def dataset_ls(
    access: Viewer, state: State, dataset: str, ref: Ref | None = None, path: str = ""
) -> list[dict[str, Any]]:
    """The entries at a path of a commit (a file, or a directory's children)."""
    target = _ref(dataset, ref, path)
    resolved = datasets_of(state, access.project).resolve(target)
    return [item.to_json() for item in trees.listing(resolved.files, target.path)]


@router.get("/{dataset}/glob")
def dataset_glob(
    access: Viewer,
    state: State,
    dataset: str,
    pattern: Annotated[str, Query(min_length=1, max_length=4096)],
    ref: Ref | None = None,
) -> list[dict[str, Any]]:
    """The files and directories a Pachyderm glob names in a commit."""
    resolved = datasets_of(state, access.project).resolve(_ref(dataset, ref))
    return [item.to_json() for item in trees.glob(resolved.files, pattern)]


@router.get("/{dataset}/diff")
def dataset_diff(
    access: Viewer,
    state: State,
    dataset: str,
    old: Annotated[str, Query(alias="from", max_length=200)],
    new: Annotated[str, Query(alias="to", max_length=200)],
) -> dict[str, Any]:
    """Files added, removed and changed between two commits of the dataset."""
    datasets = datasets_of(state, access.project)
    before = datasets.resolve(_ref(dataset, old)).files
    return trees.diff(before, datasets.resolve(_ref(dataset, new)).files).to_json()


@router.get("/{dataset}/files/{path:path}")
def get_file(
    access: Viewer, state: State, dataset: str, path: str, ref: Ref | None = None
) -> FileResponse:
    """A file's content."""
    datasets = datasets_of(state, access.project)
    target = _ref(dataset, ref, path)
    entry = datasets.resolve(target).files.get(target.path)
    if entry is None:
        raise NotFoundError(f"/{target.path} is not a file of {dataset}")
    store = datasets.project.store
    if not store.has(entry.digest):
        raise HTTPException(410, f"the content of /{target.path} is gone from the store")
    name = target.path.rsplit("/", 1)[-1]
    return FileResponse(store.path_of(entry.digest), filename=name)


@router.put("/{dataset}/files/{path:path}", status_code=201)
async def put_file(
    access: Member,
    state: State,
    request: Request,
    dataset: str,
    path: str,
    branch: Annotated[str, Query(max_length=63)] = "master",
    append: bool = False,
    message: Annotated[str, Query(max_length=64 * 1024)] = "",
) -> dict[str, Any]:
    """A new commit on ``branch`` with the request body at ``path`` (replacing the file
    there, or after it with ``append``)."""
    datasets = datasets_of(state, access.project, downstream=True)
    target = _ref(dataset, check_name(branch, "branch"), path)
    body, _size = await spool_body(request, state.config.max_dataset_body, state.config.data)
    try:
        commit = await run_in_threadpool(
            datasets.put, target, ["-"], message, append, False, None, body
        )
        state.pachyderm_wake.set()
    except ConcurrencyError as exc:
        raise HTTPException(409, str(exc)) from None
    finally:
        body.close()
    return commit.to_json()


@router.put("/{dataset}/tree", status_code=201)
async def put_tree(
    access: Member,
    state: State,
    request: Request,
    dataset: str,
    branch: Annotated[str, Query(max_length=63)] = "master",
    append: bool = False,
    message: Annotated[str, Query(max_length=64 * 1024)] = "",
) -> dict[str, Any]:
    """A new commit on ``branch`` with every file of the body, an uncompressed tar
    stream whose names are the files' paths in the dataset (``data put DIR --remote``):
    regular files only, capped like a file put (``max_dataset_body``) and in count."""
    datasets = datasets_of(state, access.project, downstream=True)
    target = _ref(dataset, check_name(branch, "branch"))
    datasets.get(target.dataset)  # an unknown dataset: 404 before the body is read
    body, _size = await spool_body(request, state.config.max_dataset_body, state.config.data)
    scratch = state.config.data / "tmp"
    try:
        with tempfile.TemporaryDirectory(dir=scratch, prefix="tree-") as folder:
            sources = await run_in_threadpool(read_tar, body, Path(folder))
            body.close()
            commit = await run_in_threadpool(datasets.put_sources, target, sources, message, append)
            state.pachyderm_wake.set()
    except ConcurrencyError as exc:
        raise HTTPException(409, str(exc)) from None
    finally:
        body.close()
    return commit.to_json()


@router.delete("/{dataset}/files/{path:path}")
def delete_file(
    access: Member,
    state: State,
    dataset: str,
    path: str,
    branch: Annotated[str, Query(max_length=63)] = "master",
    message: Annotated[str, Query(max_length=64 * 1024)] = "",
) -> dict[str, Any]:
    """A new commit on ``branch`` without ``path`` (a file, or a directory and below)."""
    target = _ref(dataset, check_name(branch, "branch"), path)
    try:
        commit = datasets_of(state, access.project, downstream=True).delete_path(target, message)
        state.pachyderm_wake.set()
    except ConcurrencyError as exc:
        raise HTTPException(409, str(exc)) from None
    return commit.to_json()


@router.get("/{dataset}/branches")
def list_branches(access: Viewer, state: State, dataset: str) -> dict[str, str | None]:
    """Branch name -> head commit id (null: no commits yet)."""
    return datasets_of(state, access.project).branches(check_name(dataset))


@router.put("/{dataset}/branches/{branch}")
def put_branch(
    access: Member, state: State, dataset: str, branch: str, body: BranchPut
) -> dict[str, Any]:
    """Create or move a branch to a commit of the dataset (members); the pipelines
    reading that branch run, as after a commit."""
    head = _ref(dataset, body.head) if body.head else None
    check_name(branch, "branch")
    datasets = datasets_of(state, access.project, downstream=True)
    moved = datasets.branch(check_name(dataset), branch, head)
    state.pachyderm_wake.set()
    return {"dataset": dataset, "branch": branch, "head": moved}


@router.delete("/{dataset}/branches/{branch}")
def delete_branch(access: Lead, state: State, dataset: str, branch: str) -> dict[str, Any]:
    """Delete a branch (leads); its commits stay."""
    datasets_of(state, access.project).delete_branch(check_name(dataset), branch)
    return {"dataset": dataset, "branch": branch, "deleted": True}
