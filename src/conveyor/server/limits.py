"""Request body caps, enforced in the ASGI layer before any handler holds a body.

Each request gets the cap of its route family (git pushes, webhooks, the rest). A
``Content-Length`` over the cap is answered 413 before a byte of the body is read; a
chunked body is counted as it arrives and refused (413) once it passes the cap, so no
handler ever holds more than the cap. uvicorn stops reading the socket while the app is
not asking for the body, so an unread body does not pile up in memory either.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import IO, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server.config import ServerConfig

IN_MEMORY = 1024 * 1024  # a spooled body larger than this goes to a file
MAX_CALL_BODY = 64 * 1024**2
"""The largest body of a deployment call (the largest ``max_body`` a lead may set)."""


def body_cap(config: ServerConfig, path: str) -> int:
    """The largest body accepted on ``path``."""
    if path.startswith("/git/"):
        return config.max_push_body
    if path.startswith(("/hooks/", "/internal/")):  # /internal/: a push's ref updates
        return config.max_webhook_body
    if dataset_file(path):
        return config.max_dataset_body
    if deployment_call(path):
        return MAX_CALL_BODY  # each deployment's own max_body is checked by the route
    if path.startswith("/craft/"):
        return config.max_craft_body
    return config.max_api_body


def dataset_file(path: str) -> bool:
    """``/api/v1/projects/P/datasets/D/files/...``: a file put into a dataset; or
    ``.../datasets/D/tree``: many files as one tar stream."""
    parts = path.split("/", 8)
    return (
        len(parts) >= 8
        and parts[:4] == ["", "api", "v1", "projects"]
        and parts[5] == "datasets"
        and ((len(parts) == 9 and parts[7] == "files") or parts[7:] == ["tree"])
    )


def deployment_call(path: str) -> bool:
    """``/api/v1/projects/P/deployments/D/call``: a call of an endpoint."""
    parts = path.split("/")
    return (
        len(parts) == 8
        and parts[:4] == ["", "api", "v1", "projects"]
        and (parts[5] == "deployments" and parts[7] == "call")
    )


def too_large(cap: int) -> str:
    return f"the request body is larger than the server's limit for this route ({cap} bytes)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its cap (a 413 for the client)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, too_large(cap))


class BodyLimit:
    """ASGI middleware: cap every HTTP request body (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(self.config, str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _refuse(send, cap, str(scope.get("path", "")))  # before reading
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, cap: int, path: str) -> None:
    shape: dict[str, str] = {"detail": too_large(cap)}
    if path.startswith("/craft/"):  # the Craft AI SDK reads `message` and `name`
        shape = {"name": "PayloadTooLarge", "message": too_large(cap)}
    body = json.dumps(shape).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def spool_body(request: Request, limit: int, data: Path) -> tuple[IO[bytes], int]:
    """The body, counted against ``limit`` as it arrives, in a spooled temporary file (in
    memory up to ``IN_MEMORY``, then an unlinked file under ``data/tmp``); the caller
    closes it. Returns the file, rewound, and the body's size."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    (data / "tmp").mkdir(parents=True, exist_ok=True)
    # the spool outlives this function: the caller closes it
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, dir=str(data / "tmp"))  # noqa: SIM115
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size
