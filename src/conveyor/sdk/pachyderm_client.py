"""``conveyor pipeline|job|datum ... --remote``: a project's Pachyderm pipelines on its
server, over the REST API (``server/api_pipelines``), with the methods and JSON of the
local ``Pipelines`` that the commands use. A spec file goes as its text: the server
reads it with the same reader, and its errors come back with their position."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from conveyor.errors import ConveyorError, UsageError
from conveyor.sdk.pachyderm_jobs import MAX_SPEC
from conveyor.sdk.remote import RemoteClient


class RemotePipelines:
    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def create(self, spec_file: Path, shown: str, update: bool, reprocess: bool) -> list[str]:
        try:
            size = spec_file.stat().st_size
        except FileNotFoundError:
            raise UsageError(f"{shown}: no such file") from None
        if size > MAX_SPEC:
            raise UsageError(f"{shown} is larger than {MAX_SPEC // 1024} KiB")
        try:
            text = spec_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{shown}: not UTF-8 text") from None
        body = {"spec": text, "file": shown, "reprocess": reprocess}
        answer = self.client.request("PUT" if update else "POST", "/pipelines", body)
        return [str(name) for name in answer["pipelines"]]

    def summaries(self) -> list[dict[str, Any]]:
        return list(self.client.request("GET", "/pipelines"))

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self.client.request("GET", f"/pipelines/{quote(name, safe='')}"))

    def delete(self, name: str, keep_dataset: bool) -> None:
        keep = "?keep_dataset=true" if keep_dataset else ""
        self.client.request("DELETE", f"/pipelines/{quote(name, safe='')}{keep}")

    def queue_run(self, name: str) -> dict[str, Any]:
        """Ask the server for a job of the pipeline (it runs in the server's jobs thread)."""
        return dict(self.client.request("POST", f"/pipelines/{quote(name, safe='')}/run"))

    def jobs(self, pipeline: str | None) -> list[dict[str, Any]]:
        query = f"?{urlencode({'pipeline': pipeline})}" if pipeline else ""
        return list(self.client.request("GET", f"/jobs{query}"))  # datum_counts, no datums

    def pending(self) -> dict[str, Any]:
        """The triggers not run yet, and ``notice``: why they wait, when no worker asks."""
        return dict(self.client.request("GET", "/jobs/pending"))

    def worker_notice(self) -> str | None:
        """The server's line about triggers waiting for a ``conveyor worker`` that does
        not ask for work; None when there is none. Best effort: what the command did is
        done, so a server that predates the list (or went away) tells nothing."""
        try:
            notice = self.pending().get("notice")
        except ConveyorError:
            return None
        return str(notice)[:500] if notice else None

    def job(self, job_id: str) -> dict[str, Any]:
        """The job with its datums (as the local record has them)."""
        path = f"/jobs/{quote(job_id, safe='')}"
        found = dict(self.client.request("GET", path))
        found["datums"] = list(self.client.request("GET", f"/jobs/{found['id']}/datums"))
        found.pop("datum_counts", None)
        return found
