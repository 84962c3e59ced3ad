"""Templates (autoescaped Jinja2 from the package) and the error page."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from conveyor import __version__
from conveyor.server.web.session import Session, SignInNeeded, open_session


@cache
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("conveyor.server.web", "templates"),
        autoescape=select_autoescape(("html", "svg"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = __version__
    return env


WARM_TEMPLATES = ("base.html", "projects.html", "runs.html", "run.html", "step.html")


def warm() -> None:
    """Compile the main pages' templates and import what a run page needs (the graph
    layout, the plan compiler, the pipeline loader): run in a thread at the server's
    start, so the first page a reader opens does not pay these few hundred
    milliseconds."""
    import grandalf.layouts  # noqa: F401

    import conveyor.plan.compile
    import conveyor.server.triggers
    import conveyor.spec.load
    import conveyor.spec.yamlsource  # noqa: F401

    env = _environment()
    for name in WARM_TEMPLATES:
        env.get_template(name)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    session: Session | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = {
        **context,
        "nonce": request.state.csp_nonce,
        "csrf": session.csrf if session else None,
        "path": request.url.path,
    }
    html = _environment().get_template(name).render(page)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def page_error(request: Request, exc: HTTPException) -> Response:
    """A refused page: to the sign-in form (a GET without a session), else one sentence."""
    if isinstance(exc, SignInNeeded) and request.method == "GET":
        if request.url.path.endswith(("/live", "/log")):  # fragments: the script decides
            return Response(str(exc.detail), status_code=401, media_type="text/plain")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/signin?next={quote(target)}", 303)
    session = open_session(request)
    context = {"status": exc.status_code, "detail": str(exc.detail)}
    return render(request, "error.html", context, session, exc.status_code)
