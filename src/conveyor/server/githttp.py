"""Git smart HTTP per project: ``git http-backend`` behind the server.

A request body is counted while it streams (uvicorn has already undone chunked transfer
encoding) and spooled: in memory up to a few MiB, then to a file in the data directory,
up to the configured push limit (413 beyond it), so a push never sits whole on the heap
and http-backend always gets a ``CONTENT_LENGTH``. Fetching
needs the viewer role, pushing the member role; the password of HTTP basic auth is an
API token. The post-receive hook calls back ``/internal/post-receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import IO

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from conveyor.server.auth import authorize, server
from conveyor.server.db.accounts import role_at_least
from conveyor.server.deployments.service import on_push
from conveyor.server.limits import spool_body
from conveyor.server.pachyderm_ci import queue_ci
from conveyor.server.triggers import parse_updates, queue_updates

router = APIRouter(include_in_schema=False)


@router.api_route("/git/{project}/{path:path}", methods=["GET", "POST"])
async def git_http(request: Request, project: str, path: str) -> Response:
    state = server(request)
    name = project.removesuffix(".git")
    pushing = "git-receive-pack" in (path, request.query_params.get("service"))
    try:
        access = await run_in_threadpool(authorize, request, name, "viewer", "Basic")
    except HTTPException as exc:
        if exc.status_code == 403:
            exc = HTTPException(403, f"you are not a member of project {name}")
        return _refused(exc)
    if pushing and not role_at_least(access.role, "member"):
        return _refused(
            HTTPException(
                403, f"viewers cannot push to project {name}: pushing needs the member role"
            )
        )
    user = access.user
    try:
        body, size = await spool_body(request, state.config.max_push_body, state.config.data)
    except HTTPException as exc:  # over the push limit: said to the git client in plain text
        return _refused(exc)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state.config.data),
        "GIT_PROJECT_ROOT": str(state.config.project_dir(name)),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/repo.git/{path}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(size),
        "REMOTE_USER": user.name,
        "REMOTE_ADDR": request.client.host if request.client else "",
        "CONVEYOR_HOOK_URL": state.config.hook_url,
        "CONVEYOR_HOOK_SECRET": state.hook_secret,
        "CONVEYOR_PROJECT": name,
    }
    for header, variable in (
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ):
        if header in request.headers:
            env[variable] = request.headers[header]
    return await _backend(env, body)


def _refused(exc: HTTPException) -> Response:
    """Plain text, which the git client prints as ``remote:`` lines (it shows no JSON)."""
    return PlainTextResponse(f"{exc.detail}\n", exc.status_code, headers=exc.headers)


async def _backend(env: dict[str, str], body: IO[bytes]) -> Response:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None

    async def feed() -> None:
        """Hand the body over; http-backend may exit without reading it (a GET)."""
        assert proc.stdin is not None
        try:
            while chunk := body.read(65536):
                proc.stdin.write(chunk)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass  # uvloop raises RuntimeError for a pipe the child already closed
        finally:
            body.close()
            with contextlib.suppress(RuntimeError, OSError):
                proc.stdin.close()

    feeder = asyncio.create_task(feed())
    status, headers = 200, {}
    while True:
        line = (await proc.stdout.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip()] = value.strip()
    media = headers.pop("Content-Type", None)

    async def stream() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            yield chunk
        await feeder
        await proc.wait()

    return StreamingResponse(stream(), status_code=status, headers=headers, media_type=media)


@router.post("/internal/post-receive")
async def post_receive(request: Request) -> Response:
    state = server(request)
    if request.headers.get("x-conveyor-hook") != state.hook_secret:
        raise HTTPException(403, "not a hook of this server")
    project = request.headers.get("x-conveyor-project", "")
    who = request.headers.get("x-conveyor-user", "")
    updates = parse_updates((await request.body()).decode(errors="replace"))
    lines = await run_in_threadpool(queue_updates, state, project, updates, who, "push")
    lines += await run_in_threadpool(on_push, state, project, updates)
    lines += await run_in_threadpool(queue_ci, state, project, updates)
    return PlainTextResponse("".join(f"{line}\n" for line in lines))
