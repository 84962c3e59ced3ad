"""``get_metrics``: the single-value metrics of a project's Craft executions, read back
from the tracking logs their ``function`` step stored (``record_metric_value`` inside an
execution writes them; the last value of a name wins, as for ``conveyor.log_metric``)."""

from __future__ import annotations

from typing import Any

from conveyor.domain.tracking import LOG_NAME, tracking_path
from conveyor.errors import ConveyorError
from conveyor.metadata.records import OutputRecord
from conveyor.sdk.metricfiles import parse_tracking
from conveyor.sdk.tracking import read_bounded
from conveyor.server.craft import definitions
from conveyor.server.craft.executions import pipeline_of
from conveyor.server.state import ServerState

FUNCTION_STEP = "craft.function"
MAX_RUNS = 10_000


def single_values(
    state: ServerState, project: str, filters: dict[str, str]
) -> list[dict[str, Any]]:
    """Metrics as the SDK lists them, oldest execution first, filtered by ``name``,
    ``pipeline_name``, ``execution_id`` (``deployment_name``: none, there are none)."""

    if filters.get("deployment_name"):
        return []
    store = state.config.open_store()
    where = tracking_path(FUNCTION_STEP)
    found = []
    for run in reversed(state.db.queue.for_project(project, MAX_RUNS)):
        pipeline = pipeline_of(run)
        if pipeline is None or not run.status.finished:
            continue
        if filters.get("pipeline_name") not in (None, pipeline):
            continue
        if filters.get("execution_id") not in (None, run.id):
            continue
        for step in state.db.records.step_runs(run.id):
            for output in step.outputs if step.step_id == FUNCTION_STEP else ():
                if output.path != where or output.kind != "tree":
                    continue
                try:
                    entries = store.read_manifest(output.digest).files
                    logs = [e for e in entries if e.path == LOG_NAME]
                    record = [OutputRecord(LOG_NAME, e.digest, "file", e.size) for e in logs]
                    values = parse_tracking(read_bounded(store, record[0], "")).metrics
                except (ConveyorError, IndexError):
                    continue  # no log, or one the store lost: no metrics of this run
                found += [
                    {
                        "name": name,
                        "value": value,
                        "created_at": definitions.iso(run.ended_at),
                        "execution_id": run.id,
                        "deployment_name": None,
                        "pipeline_name": pipeline,
                    }
                    for name, value in values.items()
                    if filters.get("name") in (None, name)
                ]
    return found
