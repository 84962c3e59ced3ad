"""Errors in the shape the SDK raises as its ``SdkException``: a JSON body with
``name``, ``message`` and ``request_id``, under any status."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from fastapi.responses import JSONResponse

from conveyor.errors import ConveyorError

PREFIX = "/craft/"


class CraftError(ConveyorError):
    """A refusal of the Craft API: its HTTP status, the SDK's error name, one sentence."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def not_found(what: str) -> CraftError:
    return CraftError(404, "NotFound", what)


def bad_input(message: str) -> CraftError:
    return CraftError(400, "BadRequest", message)


def unsupported(feature: str) -> CraftError:
    """A part of the SDK's surface Conveyor does not serve: named, never a 404 page."""
    return CraftError(
        501,
        "NotImplemented",
        f"{feature} of the Craft AI API are not served by Conveyor; see docs/craft.md for what is",
    )


NAMES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}


def craft_response(
    status: int, message: str, name: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {
        "name": name or NAMES.get(status, "ServerError"),
        "message": message,
        "request_id": secrets.token_hex(8),
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def is_craft(path: str) -> bool:
    return path.startswith(PREFIX)
