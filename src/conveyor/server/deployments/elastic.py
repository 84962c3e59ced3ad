"""An ``elastic`` call: a run of the normal queue and executors, waited for.

The run's parameters are the call's inputs (the pipeline reads them as ``params``);
the call waits for the run, polling its queue row (one indexed read each time, the
interval growing from 20 ms to 1 s: a long run costs one query a second), and
answers with the outputs the deployment maps: a key of the ``python:`` step's JSON
result, or a run output file as the API path to download it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from conveyor.domain.states import RunStatus
from conveyor.server.deployments import callfiles
from conveyor.server.deployments.model import pick_outputs
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.masking import Masker
from conveyor.server.state import ServerState
from conveyor.server.warmpool.errors import CallTimeout, ServerStopping

POLL = (0.02, 1.5, 1.0)
"""Seconds before the first re-read of the run's row, the growth factor, the longest."""
MAX_LOG = 64 * 1024
MAX_RESULT = 16 * 1024**2


@dataclass(frozen=True)
class Outcome:
    ok: bool
    outputs: dict[str, Any] | None
    logs: str
    error: str | None


def params_of(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as run parameters: JSON values and arrays as their JSON text."""
    return {
        k: v if isinstance(v, str | int | float | bool) else json.dumps(v)
        for k, v in inputs.items()
    }


def queue_call(
    state: ServerState,
    record: DeploymentRecord,
    inputs: dict[str, Any],
    who: str,
    files: dict[str, bytes] | None = None,
) -> str:
    """The call's run, queued; its files (if any) in a commit over the deployment's,
    each input's parameter the file's path in the run's workspace."""
    commit, params = record.commit, params_of(inputs)
    if files:
        repo = state.config.repo_dir(record.project)
        commit = callfiles.call_commit(repo, record.commit, files)
        params.update({name: callfiles.path_of(name, data) for name, data in files.items()})
    run_id = state.db.queue.enqueue(record.project, record.ref, commit, "deployment", who, params)
    state.wake.set()
    return run_id


def wait_run(state: ServerState, run_id: str, timeout: float) -> RunStatus:
    deadline = time.monotonic() + timeout
    delay, growth, longest = POLL
    while True:
        run = state.db.queue.get(run_id)
        if run is not None and run.status.finished:
            return run.status
        left = deadline - time.monotonic()
        if left <= 0:
            state.db.queue.request_cancel(run_id)
            raise CallTimeout(f"the call's run {run_id} did not finish in {timeout:g} s")
        if state.deployments.stopping.wait(min(delay, left)):
            raise ServerStopping(f"the server stopped while the call's run {run_id} ran")
        delay = min(delay * growth, longest)


def outcome(
    state: ServerState, record: DeploymentRecord, run_id: str, status: RunStatus, result: str | None
) -> Outcome:
    """What a finished run gives the call: outputs (when it succeeded), logs, error."""

    store = state.config.open_store()
    files: dict[str, dict[str, Any]] = {}
    logs = []
    masker = Masker(state.secrets_for(record.project).values())
    for step in state.db.records.step_runs(run_id):
        for output in step.outputs:
            files[output.path] = {"digest": output.digest, "size": output.size, "kind": output.kind}
        if step.log_path:
            logs.append(_log_text(step.log_path, masker))
    run = state.db.queue.get(run_id)
    if status != RunStatus.SUCCEEDED:
        error = (run.error if run else None) or f"the run {run_id} {status}"
        return Outcome(False, None, "".join(logs), error)
    value: Any = None
    if result is not None and result in files:
        value = json.loads(store.read_bytes(files[result]["digest"])[:MAX_RESULT])
    outputs = pick_outputs(record.settings.outputs, value)
    base = f"/api/v1/projects/{record.project}/runs/{run_id}/artifacts"
    for m in record.settings.outputs:
        if m.source == "file" and m.path is not None:
            found = files.get(m.path)
            outputs[m.name] = None if found is None else {**found, "url": f"{base}/{m.path}"}
    return Outcome(True, outputs, "".join(logs), None)


def _log_text(path: str, masker: Masker) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_LOG)
    except OSError:
        return ""
    return masker.mask(data).decode("utf-8", "replace")
