"""The SDK's ``Client`` on a Conveyor server: the REST API through ``RemoteClient``
(one ``httpx.Client``, timeouts, retries on idempotent calls only)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.errors import UsageError
from conveyor.sdk.backend import StartRequest, cache_place, user_cache
from conveyor.sdk.project import Project
from conveyor.sdk.remote import (
    FINISHED,
    RemoteClient,
    current_branch,
    safe_relative,
    write_atomically,
)
from conveyor.spec.files import find_pipeline_file


class RemoteBackend:
    def __init__(
        self, remote: RemoteClient, cache: Path | None = None, project: Project | None = None
    ) -> None:
        """``project``: the clone this server client was made from (``for_remote``): a
        run defaults to its branch, which must be pushed, as ``run --remote`` does."""
        self.remote = remote
        self.project = project
        self.where = f"server {remote.settings.url}, project {remote.settings.project}"
        self._cache = cache or user_cache() / "outputs"

    def list_runs(self, limit: int) -> list[dict[str, Any]]:
        return self.remote.list_runs(limit)

    def get_run(self, ref: str) -> dict[str, Any]:
        return self.remote.get_run(ref)

    def start(self, request: StartRequest) -> str:
        if request.only or request.force:
            raise UsageError("a server runs the whole pipeline: only= and force= are local")
        if request.pipeline_file is not None and not self._runs_on_server(request.pipeline_file):
            raise UsageError(
                f"a server runs the project's pipeline file, not {request.pipeline_file.name}; "
                "name it pipeline.py at the project's root (with no conveyor.yml), or run locally"
            )
        ref = request.ref or "main"
        if self.project is not None:
            ref = request.ref or current_branch(self.project)
            self.remote.check_pushed(self.project.root, ref)
        run = self.remote.create_run(ref, request.params)
        return str(run["id"])

    def _runs_on_server(self, path: Path) -> bool:
        """Whether the server, which finds the pipeline file as a local run does, runs
        this one (a ``@conveyor.pipeline`` given to ``run``)."""
        return self.project is not None and find_pipeline_file(self.project.root) == path

    def planned_steps(self, run_id: str) -> int | None:
        return None

    def ended(self, run_id: str, timeout: float) -> bool:
        time.sleep(timeout)
        return str(self.remote.get_run(run_id)["status"]) in FINISHED

    def cancel(self, run_id: str) -> None:
        self.remote.cancel_run(run_id)

    def log(self, run_id: str, step_id: str, tail: int | None) -> Iterator[str]:
        return self.remote.stream_log(run_id, step_id, tail)

    def output_bytes(self, run_id: str, output: Mapping[str, Any]) -> bytes:
        if output.get("kind") == "tree":
            raise UsageError(f"{output['path']} is a directory: its local_path() is one")
        return self.remote.artifact(run_id, str(output["path"]))

    def output_path(self, run_id: str, output: Mapping[str, Any]) -> Path:
        """A copy in the user's cache, downloaded once per digest."""
        place = cache_place(self._cache, output)
        if place.exists():
            return place
        if output.get("kind") != "tree":
            write_atomically(place, self.output_bytes(run_id, output))
            return place
        prefix = str(output["path"]).rstrip("/") + "/"
        staging = place.with_name(f".{place.name}.conveyor-tmp")
        wanted = [f for f in self.remote.artifacts(run_id) if str(f["path"]).startswith(prefix)]
        for item in wanted:
            path = safe_relative(str(item["path"]))
            inner = safe_relative(path[len(prefix) :])
            write_atomically(staging / inner, self.remote.artifact(run_id, path))
        staging.mkdir(parents=True, exist_ok=True)  # an empty directory output
        staging.replace(place)
        return place

    def fetch(self, run_id: str, destination: Path) -> int:
        return self.remote.download(run_id, destination)

    def lineage(self, target: str) -> dict[str, Any]:
        return self.remote.lineage(target)

    def tracking(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """One run's metrics from the server (``GET .../metrics``); several compared
        here as ``runs compare`` does, outputs by the digests in each run's JSON."""
        from conveyor.sdk.tracking import rows

        found = [self.remote.metrics(ref) for ref in run_ids]
        if len(found) == 1:
            return found[0]
        digests = [_output_digests(self.remote.get_run(f["run"])) for f in found]
        return {
            "runs": [f["run"] for f in found],
            "params": [r.to_json() for r in rows([f["params"] for f in found])],
            "metrics": [r.to_json() for r in rows([f["metrics"] for f in found])],
            "changed_outputs": [r.to_json() for r in rows(digests) if r.differs],
            "errors": [f"run {f['run']}: {e}" for f in found for e in f["errors"]],
        }

    def upstream(self, run_id: str) -> dict[str, list[str]]:
        return {}  # the server's API does not give the steps' dependencies

    def close(self) -> None:
        self.remote.close()


def _output_digests(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """step -> output path -> digest, tracking directories left out (as locally)."""
    from conveyor.domain.tracking import TRACKING_DIR

    table: dict[str, dict[str, Any]] = {}
    for step in run.get("steps", []):
        kept = {
            o["path"]: o["digest"]
            for o in step.get("outputs", [])
            if not str(o["path"]).startswith(TRACKING_DIR + "/")
        }
        if kept:
            table[str(step["id"])] = kept
    return table
