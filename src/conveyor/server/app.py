"""The FastAPI application: routers, error mapping, and the background threads.

Background work (in-process workers, heartbeats, schedules) starts with the app's
lifespan, never in a constructor, and stops with it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor import __version__
from conveyor.errors import ConveyorError, NotFoundError, UsageError
from conveyor.server.limits import BodyLimit
from conveyor.server.state import ServerState
from conveyor.server.worker import Worker

log = logging.getLogger("conveyor.server")


def create_app(state: ServerState, workers: int | None = None) -> FastAPI:
    """The app; ``workers`` in-process workers (default: the configured number)."""
    from conveyor.server import (
        api_datasets,
        api_deployments,
        api_pipelines,
        api_projects,
        api_runs,
        api_tracking,
        githttp,
        webhooks,
    )
    from conveyor.server.craft import routes as craft_routes
    from conveyor.server.web import deploys, lead, pages
    from conveyor.server.web.docs import add_docs
    from conveyor.server.web.headers import SecurityHeaders
    from conveyor.server.web.render import warm
    from conveyor.server.web.source import ServerSource

    count = state.config.workers if workers is None else workers

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        pool, threads = start_background(state, count, stop)
        # the first run page a reader opens, without the one-off imports and templates
        threading.Thread(target=warm, name="web-warm", daemon=True).start()
        try:
            yield
        finally:
            stop.set()
            state.wake.set()
            for worker in pool:
                worker.shutdown()
            for thread in threads:
                thread.join(timeout=30)
            state.deployments.close()

    app = FastAPI(
        title="Conveyor server",
        version=__version__,
        description="Projects, pipelines, runs, logs, artifacts, lineage, schedules, "
        "secrets and members. Authenticate with `Authorization: Bearer TOKEN`.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by add_docs, never from a CDN
        redoc_url=None,  # ReDoc has no packaged build: Swagger UI alone
    )
    app.state.server = state
    app.state.web_source = ServerSource(state)
    app.add_middleware(BodyLimit, config=state.config)
    app.add_middleware(SecurityHeaders)

    # A request tries the routes in this order, each path's regex in turn (tens of
    # microseconds a route): the health check and the endpoints' calls, the routes hit
    # hardest, come first. No other route's path can match theirs.
    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(api_deployments.router)
    app.include_router(api_runs.router)
    app.include_router(api_tracking.router)
    app.include_router(api_projects.router)
    app.include_router(api_datasets.router)
    app.include_router(api_pipelines.router)
    app.include_router(webhooks.router)
    app.include_router(githttp.router)
    for pages_router in [*pages.routers(), lead.router, deploys.router]:
        app.include_router(pages_router)
    craft_routes.install(app)
    app.mount("/ui/static", pages.static_files(), name="web-static")
    add_docs(app)

    _error_handlers(app, state)

    return app


def _error_handlers(app: FastAPI, state: ServerState) -> None:
    """HTTP errors, Conveyor's errors and bad requests: JSON for the API, Craft-shaped
    bodies under ``/craft/``, an HTML page for the web pages."""
    from conveyor.server.craft.errors import craft_response, is_craft

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_craft(request.url.path):
            return craft_response(exc.status_code, str(exc.detail), headers=exc.headers)
        if _is_page(request):
            return _page_error(request, exc)
        return await http_exception_handler(request, exc)

    @app.exception_handler(ConveyorError)
    async def conveyor_error(request: Request, exc: ConveyorError) -> Response:
        detail = str(exc).replace(f"{state.config.data}/", "")  # no server path leaves
        if isinstance(exc, NotFoundError):
            code = 404
        elif isinstance(exc, UsageError):
            code = 400
        else:
            code = 500
            log.error("request failed: %s", exc)
        if is_craft(request.url.path):
            return craft_response(code, detail)
        if _is_page(request):
            return _page_error(request, StarletteHTTPException(code, detail))
        return JSONResponse({"detail": detail}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        if is_craft(request.url.path):
            return craft_response(400, detail)
        if _is_page(request):
            return _page_error(request, StarletteHTTPException(422, detail))
        return JSONResponse({"detail": detail}, status_code=422)


def _is_page(request: Request) -> bool:
    return request.url.path == "/ui" or request.url.path.startswith("/ui/")


def _page_error(request: Request, exc: StarletteHTTPException) -> Response:
    from conveyor.server.web.render import page_error

    return page_error(request, exc)


def start_background(
    state: ServerState, workers: int, stop: threading.Event
) -> tuple[list[Worker], list[threading.Thread]]:
    """Worker threads, the heartbeat watcher and the schedule clock; the deployment
    executions a stopped server left running are settled from their runs."""
    from conveyor.server.deployments.service import recover
    from conveyor.server.forge import deliver
    from conveyor.server.pachyderm_jobs import serve as pachyderm_jobs
    from conveyor.server.schedules import clock
    from conveyor.server.worker import watch, worker_name

    pool = [
        Worker(state.config, state.db, worker_name(i), state.wake, state.secrets_for)
        for i in range(workers)
    ]
    threads = [
        threading.Thread(target=w.serve, args=(stop,), name=w.name, daemon=True) for w in pool
    ]
    threads.append(
        threading.Thread(
            target=watch, args=(state.config, state.db, pool, stop, state.secrets_for), daemon=True
        )
    )
    threads.append(threading.Thread(target=clock, args=(state, stop), daemon=True))
    threads.append(threading.Thread(target=deliver, args=(state, stop), daemon=True))
    jobs = threading.Thread(target=pachyderm_jobs, args=(state, stop), daemon=True)
    jobs.start()  # not joined at shutdown: a job of hours must not hold the server up
    for thread in threads:
        thread.start()
    recover(state)
    return pool, threads
