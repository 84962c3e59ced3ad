"""Pages across runs: an artifact's lineage (and, later in this module, metrics plotted
over a branch's runs). Each checks the caller's role as the API does."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from conveyor.errors import NotFoundError
from conveyor.server.web import session as sessions
from conveyor.server.web.render import render
from conveyor.server.web.source import source

router = APIRouter(prefix="/ui", include_in_schema=False)
DIGEST = r"^[0-9a-f]{64}$"
MAX_PATH = 1000


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
    context = {"project": project, "role": access.role, "graph": graph, "path": path}
    return render(request, "lineage.html", context, session)
