"""The project's deployments on its server, over the REST API (``conveyor deploy``).

Names travel as quoted path segments; every answer is the server's JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.errors import RemoteError, UsageError
from conveyor.sdk.remote import RemoteClient, check, segment


class RemoteDeployments:
    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def _path(self, name: str, *rest: str) -> str:
        return "/".join(["/deployments", segment(name), *rest])

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.request("POST", "/deployments", body)
        return answer

    def list_all(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.client.request("GET", "/deployments")["deployments"]
        return answer

    def inspect(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.request("GET", self._path(name))
        return answer

    def update(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.request("PATCH", self._path(name), body)
        return answer

    def enable(self, name: str, enabled: bool) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        answer: dict[str, Any] = self.client.request("POST", self._path(name, verb))
        return answer

    def delete(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.request("DELETE", self._path(name))
        return answer

    def rotate_token(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.request("POST", self._path(name, "token"))
        return answer

    def executions(self, name: str, limit: int) -> list[dict[str, Any]]:
        path = self._path(name, f"executions?limit={int(limit)}")
        answer: list[dict[str, Any]] = self.client.request("GET", path)["executions"]
        return answer

    def call(
        self, name: str, inputs: dict[str, Any], files: dict[str, Path] | None = None
    ) -> dict[str, Any]:
        """A call; with ``files`` (input -> local file) it is multipart/form-data, the
        other inputs as form fields (JSON text but for strings)."""
        if not files:
            answer: dict[str, Any] = self.client.request("POST", self._path(name, "call"), inputs)
            return answer
        import httpx

        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()}
        parts = {}
        for key, path in files.items():
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"input {key!r}: cannot read {path}: {exc.strerror}") from None
            parts[key] = (path.name, data, "application/octet-stream")
        try:
            response = self.client.client.post(self._path(name, "call"), data=fields, files=parts)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.client.settings.url}: {exc}") from exc
        check(response)
        found: dict[str, Any] = response.json()
        return found
