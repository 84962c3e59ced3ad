"""Craft AI deployments as Conveyor's native deployments (``server/deployments``).

A Craft deployment is a native deployment pinned to the Craft pipeline's ref
(``refs/conveyor/craft/pipelines/NAME``), mode ``elastic``: its record, enabled flag,
endpoint token (only its SHA-256 is stored), schedule and executions table are the
native ones. A call cannot be a native elastic call (a run with parameters): a Craft
pipeline reads its inputs from its execution commit. So each call (endpoint, SDK
trigger or schedule) is a Craft execution, a run of an execution commit queued as
``run_pipeline`` queues it (with the deployment's ``max_parallel_executions`` as its
queue limit: no more of its runs run at once, the others wait their turn), and
recorded as the deployment's execution with that run; a thread finishes the record
when the run ends. The execution id the SDK sees is the
run's id, so every Craft execution route serves it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydantic import ValidationError

from conveyor.domain.states import RunStatus
from conveyor.server.craft import definitions, executions
from conveyor.server.craft.errors import CraftError, bad_input, not_found, unsupported
from conveyor.server.craft.forms import check_value, typed_inputs
from conveyor.server.db.queue import HELD
from conveyor.server.deployments import elastic, service
from conveyor.server.deployments.errors import DeploymentConflict
from conveyor.server.deployments.model import (
    DeploymentCreate,
    DeploymentSettings,
    InputMapping,
    OutputMapping,
    token_digest,
)
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.state import ServerState
from conveyor.server.warmpool.errors import CallTimeout, RateLimited

log = logging.getLogger("conveyor.server")
PREFIX = definitions.KINDS["pipeline"]
TIMEOUT = 3600.0
"""Seconds an execution may run by default (the first one builds the environment)."""
REVEAL = 600.0
"""Seconds a new endpoint token is shown to leads by ``get_deployment`` (what the
SDK's ``create_deployment`` reads): afterwards only its digest exists."""
MAX_TOKEN = 512
MIN_TOKEN = 16
PARALLEL = 6
"""Executions of a deployment that run at once unless the SDK says otherwise (Craft's
default ``max_parallel_executions_per_pod``); more wait in the queue."""
MAX_PARALLEL = 1000

_fresh: dict[tuple[str, str], tuple[str, float]] = {}
_fresh_lock = threading.Lock()


def reveal_later(project: str, name: str, token: str) -> None:
    now = time.monotonic()
    with _fresh_lock:
        for key in [k for k, (_, at) in _fresh.items() if now - at > REVEAL]:
            del _fresh[key]
        _fresh[(project, name)] = (token, now)


def revealed(project: str, name: str) -> str | None:
    with _fresh_lock:
        found = _fresh.get((project, name))
    if found is None or time.monotonic() - found[1] > REVEAL:
        return None
    return found[0]


def pipeline_of(record: DeploymentRecord) -> str | None:
    return record.ref.removeprefix(PREFIX) if record.ref.startswith(PREFIX) else None


def of_project(state: ServerState, project: str) -> list[DeploymentRecord]:
    return [r for r in service.list_all(state, project) if pipeline_of(r) is not None]


def get(state: ServerState, project: str, name: str) -> DeploymentRecord:
    record = service.store(state).get(project, name[:100])
    if record is None or pipeline_of(record) is None:
        raise not_found(f"there is no deployment {name[:100]!r} in this project")
    return record


def conflict(exc: DeploymentConflict) -> CraftError:
    return CraftError(409, "Conflict", str(exc))


# ---- mappings ----------------------------------------------------------------------


def input_mappings(definition: dict[str, Any], given: Any, kind: str) -> tuple[InputMapping, ...]:
    """Craft's ``inputs_mapping`` -> the native mappings of the inputs not read from
    the request (an unmapped input of an endpoint is its request input of that name)."""
    if given is None:
        given = []
    if not isinstance(given, list) or not all(isinstance(m, dict) for m in given):
        raise bad_input("inputs_mapping must be a list of objects")
    declared = {i["name"]: i for i in definition.get("inputs", [])}
    mapped: dict[str, InputMapping] = {}
    for item in given:
        name = str(item.get("pipeline_input_name", ""))[:100]
        if name not in declared:
            raise bad_input(f"the pipeline has no input {name!r}")
        if "datastore_path" in item:
            raise unsupported("Data store mappings of deployment inputs")
        endpoint = item.get("endpoint_input_name")
        if "constant_value" in item:
            kind_of = declared[name]["data_type"]
            if kind_of == "file":
                raise bad_input(f"input {name!r} is a file: it cannot be a constant")
            check_value(name, kind_of, item["constant_value"])
            value = {"source": "constant", "value": item["constant_value"]}
        elif "environment_variable_name" in item:
            value = {"source": "environment", "value": item["environment_variable_name"]}
        elif item.get("is_null"):
            value = {"source": "none"}
        elif endpoint is not None and endpoint != name:
            raise unsupported("Renamed endpoint inputs (endpoint_input_name)")
        else:
            continue
        try:
            mapped[name] = InputMapping(name=name, type="json", required=False, **value)
        except ValidationError as exc:
            raise bad_input(f"inputs_mapping of {name!r}: {exc.errors()[0]['msg']}") from None
    if kind == "periodic":
        loose = [n for n in declared if n not in mapped]
        if loose:
            raise bad_input(
                "a periodic deployment has no request: map every input (constant_value, "
                f"environment_variable_name or is_null); not mapped: {', '.join(loose)}"
            )
    return tuple(mapped.values())


def output_mappings(definition: dict[str, Any], given: Any) -> tuple[OutputMapping, ...]:
    if given is None:
        given = []
    if not isinstance(given, list) or not all(isinstance(m, dict) for m in given):
        raise bad_input("outputs_mapping must be a list of objects")
    declared = {o["name"] for o in definition.get("outputs", [])}
    mapped = []
    for item in given:
        name = str(item.get("pipeline_output_name", ""))[:100]
        if name not in declared:
            raise bad_input(f"the pipeline has no output {name!r}")
        if "datastore_path" in item:
            raise unsupported("Data store mappings of deployment outputs")
        endpoint = item.get("endpoint_output_name")
        if endpoint is not None and endpoint != name:
            raise unsupported("Renamed endpoint outputs (endpoint_output_name)")
        if item.get("is_null"):
            try:
                mapped.append(OutputMapping(name=name, source="none"))
            except ValidationError as exc:
                raise bad_input(f"outputs_mapping of {name!r}: {exc.errors()[0]['msg']}") from None
    return tuple(mapped)


def _timeout(body: dict[str, Any]) -> float:
    given = body.get("execution_timeout_s")
    if given is None:
        return TIMEOUT
    if isinstance(given, bool) or not isinstance(given, int | float) or not 0 < given <= TIMEOUT:
        raise bad_input(f"execution_timeout_s must be a number of seconds up to {TIMEOUT:g}")
    return float(given)


def _parallel(body: dict[str, Any]) -> int:
    """``max_parallel_executions_per_pod``: at most that many of the deployment's
    executions run at once (the others wait in the queue); Craft's default, 6, else."""
    given = body.get("max_parallel_executions_per_pod")
    if given is None:
        return PARALLEL
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= MAX_PARALLEL:
        raise bad_input(f"max_parallel_executions_per_pod must be 1 to {MAX_PARALLEL}")
    return given


def _schedule(body: dict[str, Any], kind: str) -> str | None:
    schedule = body.get("schedule")
    if kind == "periodic" and not isinstance(schedule, str):
        raise bad_input("a periodic deployment needs a schedule (five cron fields, UTC)")
    return schedule if isinstance(schedule, str) else None


def _endpoint_token(body: dict[str, Any]) -> str | None:
    given = body.get("endpoint_token")
    if given is None:
        return None
    if not isinstance(given, str) or not MIN_TOKEN <= len(given) <= MAX_TOKEN:
        raise bad_input(f"endpoint_token must be text of {MIN_TOKEN} to {MAX_TOKEN} characters")
    if not given.isprintable() or " " in given:
        raise bad_input("endpoint_token must be printable and without spaces")
    return given


# ---- create, update, delete --------------------------------------------------------


def create(state: ServerState, project: str, who: str, kind: str, body: dict[str, Any]) -> None:
    """A deployment of a Craft pipeline from the SDK's body (``create_deployment``)."""
    mode = body.get("mode", "elastic")
    if mode == "low_latency":
        raise CraftError(
            501,
            "NotImplemented",
            "low_latency deployments of Craft pipelines are not served by Conveyor (a Craft "
            "pipeline runs as an environment step and a function step; Conveyor's warm "
            "pools serve `python:` steps): create it with mode elastic (docs/craft.md)",
        )
    if mode != "elastic":
        raise bad_input("mode must be elastic or low_latency")
    name = definitions.check_name(str(body.get("name", "")), "deployment")
    path = body.get("endpoint_url_path")
    if path is not None and path != name:
        raise unsupported("Endpoint URL paths other than the deployment's name")
    pipeline = definitions.check_name(str(body.get("pipeline_name", "")))
    repo = state.config.repo_dir(project)
    _, definition = definitions.get(repo, "pipeline", pipeline)
    given_token = _endpoint_token(body) if kind == "endpoint" else None
    settings = DeploymentSettings(
        inputs=input_mappings(definition, body.get("inputs_mapping"), kind),
        outputs=output_mappings(definition, body.get("outputs_mapping")),
        schedule=_schedule(body, kind),
        timeout=_timeout(body),
        max_parallel_executions=_parallel(body),
    )
    try:
        wanted = DeploymentCreate.model_validate(
            {"name": name, "kind": kind, "ref": PREFIX + pipeline, "pin": True}
            | {"settings": settings}
        )
        _, token = service.create(state, project, who, wanted)
    except DeploymentConflict as exc:
        raise conflict(exc) from None
    except ValidationError as exc:
        raise bad_input(str(exc.errors()[0]["msg"])) from None
    if given_token is not None:
        service.store(state).change(project, name, token_digest=token_digest(given_token))
        token = given_token
    if token is not None:
        reveal_later(project, name, token)


def update(state: ServerState, project: str, name: str, body: dict[str, Any]) -> None:
    """``update_deployment``: enable or disable, a new schedule or new mappings."""
    record = get(state, project, name)
    definition = definitions.definition_at(state.config.repo_dir(project), record.commit)
    changes: dict[str, Any] = {}
    if body.get("schedule") is not None:
        if record.kind != "periodic":
            raise bad_input(f"deployment {name!r} is an endpoint: it has no schedule")
        changes["schedule"] = _schedule(body, "periodic")
    if body.get("inputs_mapping") is not None:
        changes["inputs"] = input_mappings(definition, body["inputs_mapping"], record.kind)
    if body.get("outputs_mapping") is not None:
        changes["outputs"] = output_mappings(definition, body["outputs_mapping"])
    if changes:
        settings = DeploymentSettings.model_validate({**record.settings.model_dump(), **changes})
        service.update(state, project, name, settings=settings)
    enabled = body.get("is_enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise bad_input("is_enabled must be true or false")
        service.set_enabled(state, project, name, enabled)


def rotate(state: ServerState, project: str, name: str, given: str | None) -> str:
    """A new endpoint token (the given one, or a fresh one); the old one stops at once."""
    record = get(state, project, name)
    if record.kind != "endpoint":
        raise bad_input(f"deployment {name!r} is periodic: it has no endpoint token")
    token = _endpoint_token({"endpoint_token": given}) if given else None
    if token is None:
        token = service.rotate_token(state, project, name)
    else:
        service.store(state).change(project, name, token_digest=token_digest(token))
    reveal_later(project, name, token)
    return token


def release(
    state: ServerState, project: str, pipeline: str, force: bool, lead: bool
) -> list[dict[str, str]]:
    """Before ``delete_pipeline``: its deployments, deleted only with ``force`` (by a
    lead: leads delete deployments)."""
    kinds = {r.name: r.kind for r in of_project(state, project) if pipeline_of(r) == pipeline}
    if kinds and force and not lead:
        raise CraftError(403, "Forbidden", "deleting the pipeline's deployments needs a lead")
    try:
        names = service.release_pipeline(state, project, force, ref=PREFIX + pipeline)
    except DeploymentConflict as exc:
        raise conflict(exc) from None
    return [{"name": n, "execution_rule": kinds.get(n, "endpoint")} for n in names]


# ---- executions --------------------------------------------------------------------


def admit(state: ServerState, record: DeploymentRecord) -> None:
    if record.kind != "endpoint":
        raise CraftError(409, "Conflict", f"deployment {record.name!r} is periodic: no endpoint")
    if not record.enabled:
        raise CraftError(409, "Conflict", f"deployment {record.name!r} is disabled")
    try:
        state.deployments.admit((record.project, record.name), record.settings.rate_limit)
    except RateLimited as exc:
        raise CraftError(429, "TooManyRequests", str(exc)) from None


def launch(
    state: ServerState,
    record: DeploymentRecord,
    values: dict[str, Any],
    files: dict[str, bytes],
    caller: str,
) -> str:
    """One execution of a deployment: the mapped inputs and the request's, checked as
    ``run_pipeline`` checks them, an execution commit queued as a Craft execution,
    recorded as the deployment's; returns the execution (run) id."""
    repo = state.config.repo_dir(record.project)
    definition = definitions.definition_at(repo, record.commit)
    given = dict(values)
    for mapping in record.settings.inputs:
        if mapping.name in values or mapping.name in files:
            raise bad_input(f"input {mapping.name!r} is mapped by the deployment, not sent")
        if mapping.source == "constant":
            given[mapping.name] = mapping.value
        elif mapping.source == "environment":
            variables = state.secrets_for(record.project)
            if mapping.value not in variables:
                raise bad_input(f"input {mapping.name!r}: ${mapping.value} is not set")
            given[mapping.name] = variables[mapping.value]
    checked = typed_inputs(definition, given, files)
    executed = definitions.execution_commit(repo, record.commit, checked, files)
    rows = service.store(state)
    held = (HELD + record.name, record.settings.max_parallel_executions)
    run_id = state.db.queue.enqueue(
        record.project, record.ref, executed, "craft", caller, limit=held
    )
    definitions.keep(repo, run_id, executed)
    execution_id = rows.start(record, caller, checked, run_id)
    state.wake.set()
    state.deployments.background(_finish, state, record, execution_id, run_id)
    return run_id


def _finish(state: ServerState, record: DeploymentRecord, execution_id: str, run_id: str) -> None:
    """Wait for the run (one read a second at most) and close the deployment's record."""
    rows = service.store(state)
    try:
        status = elastic.wait_run(state, run_id, record.settings.timeout)
        run = state.db.queue.get(run_id)
        if run is None:
            rows.finish(execution_id, "failed", None, None, f"the run {run_id} was deleted")
        elif status == RunStatus.SUCCEEDED:
            outputs = executions.output_values(state, run)
            rows.finish(execution_id, "succeeded", outputs, None, None)
        else:
            error = run.error or f"the run {run_id} {status}"
            rows.finish(execution_id, "failed", None, None, error)
    except CallTimeout as exc:
        rows.finish(execution_id, "failed", None, None, str(exc))
    except Exception as exc:  # a thread's end: logged, never raised into nothing
        log.warning("craft deployment %s/%s: %s", record.project, record.name, exc)


def periodic(state: ServerState, record: DeploymentRecord) -> None:
    """A scheduled execution (the schedule clock calls it through ``LAUNCHERS``)."""
    launch(state, record, {}, {}, "schedule")


service.LAUNCHERS[PREFIX] = periodic
service.SETTLERS[PREFIX] = lambda state, _record, run: executions.output_values(state, run)


def execution_of(state: ServerState, record: DeploymentRecord, run_id: str) -> Any:
    """The run of one of this deployment's executions (else 404)."""
    found = service.store(state).of_run(record.project, run_id[:100])
    run = state.db.queue.get(run_id[:100]) if found else None
    if found is None or found["deployment"] != record.name or run is None:
        raise not_found(f"deployment {record.name!r} has no execution {run_id[:100]!r}")
    return run


def latest(state: ServerState, record: DeploymentRecord) -> str | None:
    for row in service.store(state).executions(record.project, record.name, 20):
        if row["run_id"]:
            return str(row["run_id"])
    return None


def log_lines(state: ServerState, record: DeploymentRecord, limit: int) -> list[dict[str, Any]]:
    """The logs of the deployment's last executions, oldest first (an elastic
    deployment has no pod of its own: its logs are its executions')."""
    lines: list[dict[str, Any]] = []
    for row in reversed(service.store(state).executions(record.project, record.name, 20)):
        run = state.db.queue.get(row["run_id"]) if row["run_id"] else None
        if run is None:
            continue
        for line in executions.log_lines(state, run, limit):
            lines.append(
                {
                    "timestamp": line["timestamp"],
                    "message": line["message"],
                    "stream": "stdout",
                    "pod_id": None,
                    "type": "execution",
                    "execution_id": run.id,
                }
            )
    return lines[-limit:]


# ---- what the SDK reads ------------------------------------------------------------


def _input_json(item: dict[str, Any], mapping: InputMapping | None) -> dict[str, Any]:
    name = item["name"]
    out: dict[str, Any] = {
        "pipeline_input_name": name,
        "data_type": item["data_type"],
        "description": item.get("description"),
    }
    if mapping is None:
        out["endpoint_input_name"] = name
    elif mapping.source == "constant":
        out["constant_value"] = mapping.value
    elif mapping.source == "environment":
        out["environment_variable_name"] = mapping.value
    else:
        out["is_null"] = True
    if item.get("is_required"):
        out["is_required"] = True
    if "default_value" in item:
        out["default_value"] = item["default_value"]
    return out


def to_json(state: ServerState, record: DeploymentRecord, reveal: bool) -> dict[str, Any]:
    definition = definitions.definition_at(state.config.repo_dir(record.project), record.commit)
    inputs = {m.name: m for m in record.settings.inputs}
    nulls = {m.name for m in record.settings.outputs if m.source == "none"}
    outputs = [
        {
            "pipeline_output_name": o["name"],
            "data_type": o["data_type"],
            "description": o.get("description"),
            **({"is_null": True} if o["name"] in nulls else {"endpoint_output_name": o["name"]}),
        }
        for o in definition.get("outputs", [])
    ]
    data: dict[str, Any] = {
        "name": record.name,
        "mode": record.mode,
        "pipeline": {"name": pipeline_of(record)},
        "inputs_mapping": [
            _input_json(i, inputs.get(i["name"])) for i in definition.get("inputs", [])
        ],
        "outputs_mapping": outputs,
        "created_at": definitions.iso(record.created_at),
        "created_by": record.created_by,
        "updated_at": definitions.iso(record.updated_at),
        "updated_by": record.created_by,
        "is_enabled": record.enabled,
        "description": None,
        "status": "up" if record.enabled else "disabled",
        "execution_rule": record.kind,
        "execution_timeout_s": record.settings.timeout,
        "enable_parallel_executions": record.settings.max_parallel_executions > 1,
        "max_parallel_executions_per_pod": record.settings.max_parallel_executions,
    }
    if record.kind == "endpoint":
        data["endpoint_token"] = revealed(record.project, record.name) if reveal else None
        data["endpoint_url_path"] = record.name
    else:
        data["schedule"] = record.settings.schedule
        data["human_readable_schedule"] = f"cron {record.settings.schedule} (UTC)"
    return data


def list_item(record: DeploymentRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "pipeline_name": pipeline_of(record),
        "execution_rule": record.kind,
        "mode": record.mode,
        "is_enabled": record.enabled,
        "created_at": definitions.iso(record.created_at),
    }
