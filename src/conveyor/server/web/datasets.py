"""The datasets pages: a project's datasets, one dataset's branches, commits and files
at a commit, the diff between two commits, a file as a download. Read through
``sdk.datasets`` (the server's project-scoped datasets, or the laptop's own), each page
checking the caller's role as the API does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.refs import DatasetRef, check_name, parse_ref
from conveyor.server.web import session as sessions
from conveyor.server.web.lineage import commit_graph
from conveyor.server.web.render import render
from conveyor.server.web.source import source

router = APIRouter(prefix="/ui", include_in_schema=False)
Ref = Annotated[str | None, Query(max_length=200)]
LOG = 50  # commits listed
MAX_LISTED = 1000  # entries of a directory, and of each side of a diff, shown


def _ref(dataset: str, ref: str | None, path: str = "") -> DatasetRef:
    """A reference from the page's query: the dataset's name checked, never a path."""
    check_name(dataset)
    at = f"@{ref}" if ref else ""
    return parse_ref(f"{dataset}{at}" + (f":{path}" if path else ""))


@router.get("/p/{project}/datasets")
def datasets_page(request: Request, project: str) -> HTMLResponse:
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    found = src.datasets(project).summaries()
    context = {
        "project": project,
        "role": access.role,
        "datasets": found,
        "worker_notice": src.worker_notice(project),
    }
    return render(request, "datasets.html", context, session)


@router.get("/p/{project}/datasets/{dataset}")
def dataset_page(
    request: Request,
    project: str,
    dataset: str,
    ref: Ref = None,
    path: Annotated[str, Query(max_length=4096)] = "",
) -> HTMLResponse:
    """A dataset at a branch or commit: its branches, the commit's log, and its files at
    ``path`` (a directory's children, or the file)."""
    session, access = sessions.page_access(request, project, "viewer")
    datasets = source(request).datasets(project)
    target = _ref(dataset, ref, path.strip("/"))
    resolved = datasets.resolve(target)
    listed = trees.listing(resolved.files, target.path)
    context: dict[str, Any] = {
        "project": project,
        "role": access.role,
        "dataset": datasets.get(dataset),
        "ref": ref or "",
        "folder": target.path,  # not "path": the page's own URL path has that name
        "parents": _parents(target.path),
        "commit": resolved.commit,
        "branches": datasets.branches(dataset),
        "log": datasets.log(target, LOG),
        "entries": listed[:MAX_LISTED],
        "entries_total": len(listed),
        "provenance": commit_graph(datasets.records, dataset, resolved.commit.id),
        "readers": _readers(request, project, dataset, resolved.commit.id),
    }
    return render(request, "dataset.html", context, session)


def _readers(request: Request, project: str, dataset: str, commit: str) -> list[dict[str, Any]]:
    """The project's runs that checked the commit out (their ``datasets:``)."""
    src = source(request)
    reads = src.records.dataset_readers(dataset, commit)
    return [r.to_json() for r in reads if src.owns(project, r.run_id)][:LOG]


def _parents(path: str) -> list[tuple[str, str]]:
    """The breadcrumb of ``path``: each directory's name and path."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@router.get("/p/{project}/datasets/{dataset}/diff")
def diff_page(
    request: Request,
    project: str,
    dataset: str,
    old: Annotated[str, Query(alias="from", min_length=1, max_length=200)],
    new: Annotated[str, Query(alias="to", min_length=1, max_length=200)],
) -> HTMLResponse:
    """Files added, removed and changed between two commits (or branches) of a dataset."""
    session, access = sessions.page_access(request, project, "viewer")
    datasets = source(request).datasets(project)
    before = datasets.resolve(_ref(dataset, old))
    after = datasets.resolve(_ref(dataset, new))
    changes = trees.diff(before.files, after.files)
    context = {
        "project": project,
        "role": access.role,
        "dataset": dataset,
        "old": before.commit,
        "new": after.commit,
        "added": changes.added[:MAX_LISTED],
        "removed": changes.removed[:MAX_LISTED],
        "changed": changes.changed[:MAX_LISTED],
        "counts": (len(changes.added), len(changes.removed), len(changes.changed)),
        "cut": max(len(changes.added), len(changes.removed), len(changes.changed)) > MAX_LISTED,
    }
    return render(request, "dataset_diff.html", context, session)


@router.get("/p/{project}/datasets/{dataset}/files/{path:path}")
def dataset_file(
    request: Request, project: str, dataset: str, path: str, ref: Ref = None
) -> Response:
    """A file of a dataset commit, always as a download (never a page of this site)."""
    from urllib.parse import quote

    sessions.page_access(request, project, "viewer")
    datasets = source(request).datasets(project)
    target = _ref(dataset, ref, path)
    entry = datasets.resolve(target).files.get(target.path)
    if entry is None:
        raise HTTPException(404, f"/{target.path[:200]} is not a file of {dataset}")
    store = datasets.project.store
    if not store.has(entry.digest):
        raise HTTPException(410, f"the content of /{target.path[:200]} is gone from the store")
    name = quote(target.path.rsplit("/", 1)[-1], safe="")
    return FileResponse(
        store.path_of(entry.digest),
        media_type="application/octet-stream",
        headers={"content-disposition": f"attachment; filename*=utf-8''{name}"},
    )
