"""``conveyor ui``: this project's runs in a browser, from its own records and store
(the same pages as ``conveyor server``'s, without a server database or a sign-in).
Registered through the ``conveyor.commands`` entry-point group, like ``server``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor import __version__
from conveyor.errors import ConveyorError, NotFoundError, UsageError
from conveyor.sdk.project import Project
from conveyor.server.web import pages
from conveyor.server.web.headers import SecurityHeaders
from conveyor.server.web.local import LocalSource
from conveyor.server.web.render import page_error

LOOPBACK = "127.0.0.1"


def create_local_app(project: Project, name: str | None = None) -> FastAPI:
    """The pages of ``project``'s runs (``/ui/``) and their assets, and nothing else:
    no API, no git, no workers."""
    app = FastAPI(title="Conveyor", version=__version__, docs_url=None, redoc_url=None)
    app.state.web_source = LocalSource(project, name or project.root.name)
    app.add_middleware(SecurityHeaders)
    for pages_router in pages.routers():
        app.include_router(pages_router)
    app.mount("/ui/static", pages.static_files(), name="web-static")

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/ui/", 303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return page_error(request, exc)

    @app.exception_handler(ConveyorError)
    async def conveyor_error(request: Request, exc: ConveyorError) -> Response:
        code = 500
        if isinstance(exc, NotFoundError | UsageError):
            code = 404 if isinstance(exc, NotFoundError) else 400
        return page_error(request, StarletteHTTPException(code, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return page_error(request, StarletteHTTPException(422, detail))

    return app


@click.command("ui")
@click.option(
    "--host",
    default=LOOPBACK,
    show_default=True,
    help="The address to listen on. The pages have no sign-in: anyone who can reach "
    "another address reads this project's runs, logs and outputs.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The port (0: a free one, printed).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in your browser.")
@click.option("--json", "as_json", is_flag=True, help="Print the address as one JSON line.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, open_browser: bool, as_json: bool) -> None:
    """Browse this project's runs in a web page: the graph of each run, its steps,
    logs, outputs and previews, and runs compared side by side.

    \b
    The page reads the project's own records and store (.conveyor/), read-only: it
    never starts, cancels or deletes a run. It listens on 127.0.0.1 by default, on a
    free port it prints; Ctrl-C stops it.

    \b
      conveyor ui                 serve, print the address
      conveyor ui --open          and open it in the browser
      conveyor ui --port 8765     on a port of your choice
    """
    import uvicorn

    project = _project(ctx)
    app = create_local_app(project)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/ui/p/{quote(app.state.web_source.name, safe='')}"
    if as_json:
        click.echo(json.dumps({"url": url, "port": bound}), nl=True)
    else:
        click.echo(f"conveyor ui: {url}  (read-only; Ctrl-C to stop)")
    if host not in (LOOPBACK, "::1") and not as_json:
        click.echo(f"conveyor ui: warning: no sign-in, and {host} is not loopback", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


def _project(ctx: click.Context) -> Project:
    """The project the CLI's ``-C``/``-f`` name (this directory's without them)."""
    obj: Any = ctx.find_root().obj
    directory = Path(getattr(obj, "directory", Path.cwd()))
    return Project.discover(directory, getattr(obj, "pipeline_file", None))
