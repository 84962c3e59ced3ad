"""REST: what a run measured, as ``conveyor metrics show`` reads it locally: its
parameters, metrics (files, ``log_metric``, Dotscience runs), artifacts and the files
that could not be read. Viewers may read them; every text (names and values) is shown
with the project's secrets masked, and a number that spells a secret becomes text."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from conveyor.server.api_runs import get_run
from conveyor.server.auth import Access, server_state, viewer
from conveyor.server.masking import Masker
from conveyor.server.state import ServerState

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["tracking"])
Viewer = Annotated[Access, Depends(viewer)]
State = Annotated[ServerState, Depends(server_state)]


@router.get("/runs/{run_id}/metrics")
def run_metrics(access: Viewer, state: State, run_id: str) -> dict[str, Any]:
    """The run's parameters and metrics by source (a metrics file's path, ``log:STEP``,
    ``dotscience:STEP``, ``run``), its artifacts, its Dotscience runs and ``errors``: the
    JSON of ``conveyor metrics show --json``."""
    return _tracking(access, state, run_id)


@router.get("/runs/{run_id}/params")
def run_params(access: Viewer, state: State, run_id: str) -> dict[str, Any]:
    """The run's parameters by source: ``{"run", "params", "errors"}``."""
    found = _tracking(access, state, run_id)
    return {"run": found["run"], "params": found["params"], "errors": found["errors"]}


def _tracking(access: Access, state: ServerState, run_id: str) -> dict[str, Any]:
    from conveyor.sdk.tracking import tracking_of

    run = get_run(state, access.project, run_id)
    store = state.config.open_store()
    record = state.db.records.get_run(run.id)  # its params as the run resolved them
    params = record.params if record is not None else run.params
    found = tracking_of(state.db.records, store, run.id, params).to_json()
    masker = Masker(state.secrets_for(access.project).values())
    return _masked(found, masker) if masker else found


def _masked(value: Any, masker: Masker) -> Any:
    if isinstance(value, dict):
        return {_masked(k, masker): _masked(v, masker) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, masker) for v in value]
    if isinstance(value, str):
        return masker.mask(value.encode()).decode("utf-8", errors="replace")
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        return masker.mask(text.encode()).decode() if masker.contains(text.encode()) else value
    return value
