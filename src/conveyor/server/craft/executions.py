"""A run of a Craft pipeline seen as a Craft execution: status, inputs, outputs, logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conveyor.domain.states import RunStatus
from conveyor.server.craft import definitions
from conveyor.server.craft.errors import CraftError, not_found
from conveyor.server.db.queue import QueuedRun
from conveyor.server.deployments.store import Deployments
from conveyor.server.masking import Masker
from conveyor.server.results import RESULTS_PREFIX
from conveyor.server.state import ServerState
from conveyor.vcs.git import read_file, run_git

STATUS = {
    RunStatus.QUEUED: "Pending",
    RunStatus.RUNNING: "Running",
    RunStatus.SUCCEEDED: "Succeeded",
    RunStatus.FAILED: "Failed",
}
MAX_LOG_LINES = 10_000
MAX_VALUE = 16 * 1024**2


def status_of(run: QueuedRun) -> str:
    return STATUS.get(run.status, "Error")  # cancelled, interrupted: the platform's doing


def pipeline_of(run: QueuedRun) -> str | None:
    prefix = definitions.KINDS["pipeline"]
    return run.ref.removeprefix(prefix) if run.ref.startswith(prefix) else None


def get(state: ServerState, project: str, execution_id: str) -> QueuedRun:
    run = state.db.queue.get(execution_id[:100]) if execution_id else None
    if run is None or run.project != project or pipeline_of(run) is None:
        raise not_found(f"there is no execution {execution_id[:100]!r} in this project")
    return run


def for_pipeline(state: ServerState, project: str, name: str) -> list[QueuedRun]:
    ref = definitions.KINDS["pipeline"] + name
    return [r for r in state.db.queue.for_project(project, 10_000) if r.ref == ref]


def inputs_at(state: ServerState, run: QueuedRun) -> dict[str, Any]:
    data = read_file(state.config.repo_dir(run.project), run.commit, "craft/inputs.json")
    value: dict[str, Any] = json.loads(data) if data else {"values": {}, "files": []}
    return value


def output_path(state: ServerState, run: QueuedRun, path: str) -> Path | None:
    """Where the store keeps one file the ``function`` step wrote under ``craft-out``."""

    store = state.config.open_store()
    for step in state.db.records.step_runs(run.id):
        for output in step.outputs:
            if output.kind == "tree" and output.path == "craft-out":
                for entry in store.read_tree(output.digest):
                    if entry.path == path:
                        return store.local_path(entry.digest)
    return None


def output_values(state: ServerState, run: QueuedRun) -> dict[str, Any]:
    path = output_path(state, run, "outputs.json")
    if path is None or path.stat().st_size > MAX_VALUE:
        return {}
    value: dict[str, Any] = json.loads(path.read_bytes())
    return value


def _io(name: str, kind: str, value: Any, key: str) -> dict[str, Any]:
    return {
        key: name,
        "data_type": kind,
        "mapping_type": "run",
        "mapping_value": {},
        "value": value,
    }


def to_json(
    state: ServerState, run: QueuedRun, definition: dict[str, Any] | None, values: bool = True
) -> dict[str, Any]:
    repo = state.config.repo_dir(run.project)
    if definition is None:
        definition = definitions.definition_at(repo, run.commit)
    given = inputs_at(state, run) if values else {"values": {}, "files": []}
    outputs = output_values(state, run) if values and run.status == RunStatus.SUCCEEDED else {}
    inputs = [
        _io(
            i["name"],
            i["data_type"],
            None if i["data_type"] == "file" or not values else given["values"].get(i["name"]),
            "pipeline_input_name",
        )
        for i in definition.get("inputs", [])
    ]
    outs = [
        _io(
            o["name"],
            o["data_type"],
            None if o["data_type"] == "file" else outputs.get(o["name"]),
            "pipeline_output_name",
        )
        for o in definition.get("outputs", [])
    ]
    name = pipeline_of(run)
    called = Deployments(state.db.engine).of_run(run.project, run.id) if values else None
    return {
        "execution_id": run.id,
        "status": status_of(run),
        "created_at": definitions.iso(run.created_at),
        "created_by": run.who,
        "start_date": definitions.iso(run.started_at),
        "end_date": definitions.iso(run.ended_at),
        "pipeline_name": name,
        "deployment_name": called["deployment"] if called else None,
        "error": run.error,
        "steps": [
            {
                "name": name,
                "status": status_of(run),
                "start_date": definitions.iso(run.started_at),
                "end_date": definitions.iso(run.ended_at),
                "commit_id": run.commit,
                "origin": "local_folder",
                "requirements_path": definition.get("container_config", {}).get(
                    "requirements_path"
                ),
            }
        ],
        "inputs": inputs,
        "outputs": outs,
    }


def log_lines(state: ServerState, run: QueuedRun, limit: int | None) -> list[dict[str, Any]]:
    """The steps' log lines, masked with the project's secrets, each with its step."""
    masker = Masker(state.secrets_for(run.project).values())
    lines: list[dict[str, Any]] = []
    for step in state.db.records.step_runs(run.id):
        if not step.log_path or not Path(step.log_path).is_file():
            continue
        when = definitions.iso(step.started_at or run.started_at)
        raw = Path(step.log_path).read_bytes()[-(8 * 1024**2) :]
        text = masker.mask(raw).decode("utf-8", errors="replace")
        lines += [
            {"timestamp": when, "message": line, "step_name": step.step_id, "type": "stdout"}
            for line in text.splitlines()
        ]
    cap = min(limit or MAX_LOG_LINES, MAX_LOG_LINES)
    return lines[-cap:]


def delete(state: ServerState, run: QueuedRun) -> None:
    """As retention deletes a run: records, queue row, its refs and its state."""
    if not run.status.finished:
        raise CraftError(
            409, "Conflict", f"the execution {run.id} is still {status_of(run).lower()}"
        )
    state.db.records.delete_runs([run.id])
    state.db.queue.delete([run.id])
    repo = state.config.repo_dir(run.project)
    definitions.forget(repo, run.id)
    run_git(repo, "update-ref", "-d", f"{RESULTS_PREFIX}{run.id}", check=False)
    shutil.rmtree(state.config.project_dir(run.project) / "runs" / run.id, ignore_errors=True)
