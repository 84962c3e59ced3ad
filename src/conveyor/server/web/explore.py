"""Pages across runs: an artifact's lineage, and metrics plotted over a branch's (or a
pipeline's) runs. Each checks the caller's role as the API does."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from conveyor.domain.states import RunStatus
from conveyor.errors import NotFoundError
from conveyor.server.web import session as sessions
from conveyor.server.web.render import render
from conveyor.server.web.source import source

router = APIRouter(prefix="/ui", include_in_schema=False)
DIGEST = r"^[0-9a-f]{64}$"
MAX_PATH = 1000
MAX_FILTER = 200
RUNS = 30  # runs plotted by default
MAX_RUNS = 100


@router.get("/p/{project}/lineage")
def lineage_page(
    request: Request,
    project: str,
    digest: Annotated[str, Query(pattern=DIGEST)],
    path: Annotated[str, Query(min_length=1, max_length=MAX_PATH)],
) -> HTMLResponse:
    """The graph of what produced an artifact and what used it, across the project's
    runs and commits: each node links to its step or to that artifact's own lineage."""
    from conveyor.server.web.lineage import lineage_graph

    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    try:
        graph = lineage_graph(
            src.records, src.store, digest, path, functools.partial(src.owns, project)
        )
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    context = {"project": project, "role": access.role, "graph": graph, "artifact": path}
    return render(request, "lineage.html", context, session)


@router.get("/p/{project}/metrics")
def metrics_page(
    request: Request,
    project: str,
    branch: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    pipeline: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    status: RunStatus | None = RunStatus.SUCCEEDED,
    runs: Annotated[int, Query(ge=2, le=MAX_RUNS)] = RUNS,
) -> HTMLResponse:
    """The metrics of the newest runs (of a branch on a server, of a pipeline locally;
    succeeded ones unless told), oldest first: a chart per metric and a table."""
    from conveyor.sdk.tracking import tracking_of
    from conveyor.server.web.charts import charts
    from conveyor.server.web.source import RunFilters

    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    given = {"branch": branch or "", "pipeline": pipeline or ""}
    filters = {k: v for k, v in given.items() if k in src.filters}
    found, _total, _after = src.page(project, runs, RunFilters(status=status, **filters), None)
    found.reverse()  # oldest first: time goes left to right
    tables = [(r.id, tracking_of(src.records, src.store, r.id, r.params)) for r in found]
    drawn, cut = charts([(run_id, t.metrics) for run_id, t in tables])
    context = {
        "project": project,
        "role": access.role,
        "filters": filters,
        "status": str(status or ""),
        "statuses": [str(s) for s in RunStatus],
        "count": runs,
        "runs": found,
        "charts": drawn,
        "cut": cut,
        "errors": [e for _, t in tables for e in t.errors][:20],
    }
    return render(request, "metrics.html", context, session)
