"""The deployments' service functions: what the REST routes (and the Craft AI API)
call. Each takes the server state and plain values, checks them, and raises the error
root's kinds (``errors.py`` for the ones with their own HTTP status).
"""

from __future__ import annotations

import base64
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from conveyor.domain.states import RunStatus
from conveyor.errors import NotFoundError, UsageError
from conveyor.server.db.queue import QueuedRun
from conveyor.server.db.schedules import next_time
from conveyor.server.deployments import elastic
from conveyor.server.deployments.errors import DeploymentConflict, ExecutionFailed
from conveyor.server.deployments.launch import build_pool
from conveyor.server.deployments.model import (
    CallFile,
    DeploymentCreate,
    DeploymentSettings,
    call_inputs,
    check_kind,
    new_token,
    pick_outputs,
)
from conveyor.server.deployments.store import DeploymentRecord, Deployments
from conveyor.server.deployments.target import python_target, require_python
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate, load_spec_at
from conveyor.server.warmpool.errors import CallTimeout, WorkerLost
from conveyor.server.warmpool.runtime import Wanted
from conveyor.vcs.git import ZERO, check_revision, resolve

log = logging.getLogger("conveyor.server")


def store(state: ServerState) -> Deployments:
    return Deployments(state.db.engine)


def get(state: ServerState, project: str, name: str) -> DeploymentRecord:
    record = store(state).get(project, name)
    if record is None:
        raise NotFoundError(f"project {project!r} has no deployment {name[:100]!r}")
    return record


def list_all(state: ServerState, project: str) -> list[DeploymentRecord]:
    return store(state).of_project(project)


def create(
    state: ServerState, project: str, who: str, body: DeploymentCreate
) -> tuple[DeploymentRecord, str | None]:
    """A new deployment and, for an endpoint, its token (shown once, stored hashed)."""
    ref, commit = _resolve(state, project, body.ref)
    _check_pipeline(state, project, commit, body.mode)
    token, digest = new_token() if body.kind == "endpoint" else (None, None)
    now = time.time()
    record = DeploymentRecord(
        project=project,
        name=body.name,
        kind=body.kind,
        mode=body.mode,
        ref=ref,
        follow=not body.pin,
        commit=commit,
        settings=body.settings,
        enabled=True,
        token_digest=digest,
        next_at=_next_at(body.kind, body.settings, now),
        created_by=who,
        created_at=now,
        updated_at=now,
    )
    if not store(state).insert(record):
        raise DeploymentConflict(f"project {project!r} already has a deployment {body.name!r}")
    return record, token


def update(
    state: ServerState,
    project: str,
    name: str,
    settings: DeploymentSettings | None = None,
    ref: str | None = None,
    pin: bool | None = None,
) -> DeploymentRecord:
    """New settings and/or a new ref (its commit now); the warm pool is swapped at the
    next call (the old one serves until the new one is ready)."""
    record = get(state, project, name)
    values: dict[str, Any] = {}
    if ref is not None:
        values["ref"], values["commit"] = _resolve(state, project, ref)
        _check_pipeline(state, project, values["commit"], record.mode)
    if pin is not None:
        values["follow"] = not pin
    if settings is not None:
        check_kind(record.kind, settings)
        values["settings"] = settings
        if record.kind == "periodic" and settings.schedule != record.settings.schedule:
            values["next_at"] = _next_at(record.kind, settings, time.time())
    if values:
        store(state).change(project, name, **values)
    return get(state, project, name)


def set_enabled(state: ServerState, project: str, name: str, enabled: bool) -> DeploymentRecord:
    record = get(state, project, name)
    values: dict[str, Any] = {"enabled": enabled}
    if enabled and record.kind == "periodic":
        values["next_at"] = _next_at(record.kind, record.settings, time.time())
    store(state).change(project, name, **values)
    if not enabled:
        state.deployments.drop(project, name)
    return get(state, project, name)


def delete(state: ServerState, project: str, name: str) -> None:
    """The deployment goes; its warm workers drain and its checkouts are removed."""
    get(state, project, name)
    store(state).delete(project, name)
    state.deployments.drop(project, name)
    shutil.rmtree(state.config.project_dir(project) / "deployments" / name, ignore_errors=True)


def rotate_token(state: ServerState, project: str, name: str) -> str:
    """A new endpoint token; the old one stops working at once."""
    record = get(state, project, name)
    if record.kind != "endpoint":
        raise UsageError(f"deployment {name!r} is periodic: it has no endpoint token")
    token, digest = new_token()
    store(state).change(project, name, token_digest=digest)
    return token


def release_pipeline(
    state: ServerState, project: str, force: bool, ref: str | None = None
) -> list[str]:
    """Before a project's pipeline is deleted: refused while deployments serve it, unless
    ``force`` (Craft AI's ``force_deployments_deletion``), which deletes them; returns
    the names of the deployments deleted. ``ref``: only the deployments of that ref (a
    Craft pipeline's); without it, all the project's."""
    names = [r.name for r in list_all(state, project) if ref is None or r.ref == ref]
    if names and not force:
        raise DeploymentConflict(
            f"deployments still serve this pipeline ({', '.join(names)}); delete them first "
            "or force the deletion"
        )
    for name in names:
        delete(state, project, name)
    return names


Launcher = Callable[[ServerState, DeploymentRecord], None]
LAUNCHERS: dict[str, Launcher] = {}
"""Ref prefix -> what starts a periodic execution of a deployment of such a ref, when
a pipeline of that kind runs otherwise than with run parameters (the Craft API's
pipelines: an execution commit each). Registered by their package."""


def launcher(record: DeploymentRecord) -> Launcher | None:
    return next((f for p, f in LAUNCHERS.items() if record.ref.startswith(p)), None)


Settler = Callable[[ServerState, DeploymentRecord, QueuedRun], dict[str, Any]]
SETTLERS: dict[str, Settler] = {}
"""Ref prefix -> the outputs of a succeeded run of such a deployment, when an execution
a stopped server left is settled (the Craft API's: its outputs are its run's files)."""
LOST = "lost: the server stopped while this execution waited for its run"


def recover(state: ServerState) -> int:
    """At a server's start: the executions a stopped server left ``running`` are settled
    from their runs (in a thread each: a run still going is waited for, up to the
    deployment's timeout): succeeded with its outputs, or failed with why. Returns how
    many it found."""
    found = store(state).running()
    for row in found:
        state.deployments.background(_settle, state, row)
    return len(found)


def _settle(state: ServerState, row: dict[str, Any]) -> None:
    rows, run_id = store(state), row["run_id"]
    try:
        record = store(state).get(row["project"], row["deployment"])
        run = state.db.queue.get(run_id) if run_id else None
        if run is None:
            rows.finish(row["id"], "failed", None, None, f"{LOST} (it has no run)")
            return
        if not run.status.finished:
            timeout = record.settings.timeout if record else 60.0
            left = row["created_at"] + timeout - time.time()
            try:
                elastic.wait_run(state, run.id, max(left, 1.0))
            except CallTimeout:
                rows.finish(row["id"], "failed", None, None, f"{LOST}; its run {run.id} timed out")
                return
            run = state.db.queue.get(run.id)
        if run is None:
            rows.finish(row["id"], "failed", None, None, f"{LOST}; its run was deleted")
        elif run.status == RunStatus.SUCCEEDED and record is not None:
            rows.finish(row["id"], "succeeded", _outputs(state, record, run), None, None)
        else:
            why = f"{LOST}; its run {run.id} {run.status}" + (f": {run.error}" if run.error else "")
            rows.finish(row["id"], "failed", None, None, why[:2000])
    except Exception as exc:  # a thread's end: logged, never raised into nothing
        log.warning("execution %s of %s/%s: %s", row["id"], row["project"], row["deployment"], exc)


def _outputs(state: ServerState, record: DeploymentRecord, run: QueuedRun) -> dict[str, Any]:
    settle = next((f for p, f in SETTLERS.items() if record.ref.startswith(p)), None)
    if settle is not None:
        return settle(state, record, run)
    out = elastic.outcome(state, record, run.id, run.status, _result_path(state, record))
    return out.outputs or {}


def call(
    state: ServerState,
    record: DeploymentRecord,
    body: dict[str, Any],
    caller: str,
    files: dict[str, CallFile] | None = None,
) -> dict[str, Any]:
    """One call of an endpoint: checked, counted, executed; its execution's JSON.
    ``files``: a multipart call's file parts, by input."""
    if record.kind != "endpoint":
        raise DeploymentConflict(f"deployment {record.name!r} is periodic: it has no endpoint")
    if launcher(record) is not None:
        raise DeploymentConflict(
            f"deployment {record.name!r} serves a Craft pipeline: call it at "
            f"/craft/{record.project}/endpoints/{record.name} (docs/craft.md)"
        )
    if not record.enabled:
        raise DeploymentConflict(f"deployment {record.name!r} is disabled; a lead can enable it")
    state.deployments.admit((record.project, record.name), record.settings.rate_limit)
    environ = lambda: state.secrets_for(record.project)  # noqa: E731
    inputs = call_inputs(record.settings.inputs, body, environ, files)
    return execute(state, record, inputs, caller)


def execute(
    state: ServerState, record: DeploymentRecord, inputs: dict[str, Any], caller: str
) -> dict[str, Any]:
    key = (record.project, record.name)
    slot = state.deployments.slot(key, record.settings.max_parallel_executions)
    if not slot.acquire(timeout=record.settings.timeout):
        raise CallTimeout(
            f"deployment {record.name!r} ran {record.settings.max_parallel_executions} "
            "executions for the whole timeout; retry later"
        )
    try:
        if record.mode == "low_latency":
            return _warm(state, record, inputs, caller)
        return _elastic(state, record, inputs, caller)
    finally:
        slot.release()


def _split(inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """The inputs' values, their files' bytes, and what the execution records of both
    (a file as its size, digest and type)."""
    values = {k: v for k, v in inputs.items() if not isinstance(v, CallFile)}
    files = {k: v.data for k, v in inputs.items() if isinstance(v, CallFile)}
    shown = {k: v.record() if isinstance(v, CallFile) else v for k, v in inputs.items()}
    return values, files, shown


def _warm(
    state: ServerState, record: DeploymentRecord, inputs: dict[str, Any], caller: str
) -> dict[str, Any]:
    """A call served by a warm worker, recorded once it ends (one write per call)."""
    rows = store(state)
    values, files, inputs = _split(inputs)
    started, clock = time.time(), time.monotonic()
    wanted = Wanted(
        (record.project, record.name),
        record.commit,
        record.settings.pool_size,
        lambda: build_pool(state, record),
    )
    try:
        answer = state.deployments.call(
            wanted, values, record.settings.timeout, files, _file_paths(record)
        )
    except (WorkerLost, CallTimeout) as exc:
        rows.record(record, caller, inputs, started, "failed", None, None, str(exc))
        raise
    logs = str(answer.get("logs") or "")
    if not answer.get("ok"):
        error = str(answer.get("error"))
        execution_id = rows.record(record, caller, inputs, started, "failed", None, logs, error)
        raise ExecutionFailed(f"the function failed: {error}", execution_id)
    outputs = pick_outputs(record.settings.outputs, answer.get("result"))
    execution_id = secrets.token_hex(8)
    if _file_paths(record):
        outputs.update(_stored_files(state, record, answer.get("files") or {}))
        _downloads(record, execution_id, outputs)
    rows.record(record, caller, inputs, started, "succeeded", outputs, logs, None, execution_id)
    return _answer(record, execution_id, outputs, time.monotonic() - clock)


def _file_paths(record: DeploymentRecord) -> tuple[str, ...]:
    return tuple(m.path for m in record.settings.outputs if m.source == "file" and m.path)


def _stored_files(
    state: ServerState, record: DeploymentRecord, sent: dict[str, Any]
) -> dict[str, Any]:
    """A warm call's file outputs, put in the content store: each as an elastic run's
    (digest, size), with its ``path`` for the download's name."""
    store = state.config.open_store()  # the object store too, when the server has one
    out: dict[str, Any] = {}
    for m in record.settings.outputs:
        if m.source == "file" and m.path and isinstance(sent.get(m.path), str):
            data = base64.b64decode(sent[m.path])
            digest = store.put_bytes(data)
            out[m.name] = {"digest": digest, "size": len(data), "kind": "file", "path": m.path}
    return out


def _elastic(
    state: ServerState, record: DeploymentRecord, inputs: dict[str, Any], caller: str
) -> dict[str, Any]:
    rows = store(state)
    started = time.monotonic()
    values, files, inputs = _split(inputs)
    run_id = elastic.queue_call(state, record, values, caller, files)
    execution_id = rows.start(record, caller, inputs, run_id)
    try:
        status = elastic.wait_run(state, run_id, record.settings.timeout)
    except CallTimeout as exc:
        rows.finish(execution_id, "failed", None, None, str(exc))
        raise
    result = _result_path(state, record)
    out = elastic.outcome(state, record, run_id, status, result)
    _downloads(record, execution_id, out.outputs or {})
    rows.finish(execution_id, "succeeded" if out.ok else "failed", out.outputs, out.logs, out.error)
    if not out.ok:
        raise ExecutionFailed(f"the pipeline failed: {out.error}", execution_id)
    answer = _answer(record, execution_id, out.outputs or {}, time.monotonic() - started)
    return {**answer, "run_id": run_id}


def _downloads(record: DeploymentRecord, execution_id: str, outputs: dict[str, Any]) -> None:
    """Each file output's ``download``: the route an endpoint token also opens."""
    base = f"/api/v1/projects/{record.project}/deployments/{record.name}/executions"
    for name, value in outputs.items():
        if isinstance(value, dict) and ("url" in value or "digest" in value):
            value["download"] = f"{base}/{execution_id}/outputs/{name}"


_results: dict[tuple[str, str], str | None] = {}
"""A commit's pipeline never changes: where its ``python:`` step writes its result is
read once per project and commit (bounded; cleared when full)."""
_results_lock = threading.Lock()
MAX_RESULTS = 1024


def _result_path(state: ServerState, record: DeploymentRecord) -> str | None:
    """Where the run writes the ``python:`` step's result."""
    key = (record.project, record.commit)
    with _results_lock:
        if key in _results:
            return _results[key]
    target = python_target(load_spec_at(state, record.project, record.commit))
    result = None if target is None else target.result
    with _results_lock:
        if len(_results) >= MAX_RESULTS:
            _results.clear()
        _results[key] = result
    return result


def _answer(
    record: DeploymentRecord, execution_id: str, outputs: dict[str, Any], seconds: float
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "deployment": record.name,
        "status": "succeeded",
        "outputs": outputs,
        "duration": round(seconds, 6),
    }


def executions(state: ServerState, project: str, name: str, limit: int) -> list[dict[str, Any]]:
    get(state, project, name)
    return store(state).executions(project, name, limit)


def on_push(state: ServerState, project: str, updates: list[RefUpdate]) -> list[str]:
    """Deployments that follow a pushed branch move to its new commit (lines for the
    pusher); one whose pipeline no longer fits keeps its commit."""
    lines = []
    rows = store(state)
    for update in updates:
        if update.new == ZERO:
            continue
        for record in rows.following(project, update.ref):
            try:
                _check_pipeline(state, project, update.new, record.mode)
            except UsageError as exc:
                stays = f"conveyor: deployment {record.name} stays at {record.commit[:12]}"
                lines.append(f"{stays}: {exc}")
                continue
            rows.change(project, record.name, commit=update.new)
            lines.append(f"conveyor: deployment {record.name} now serves {update.new[:12]}")
    return lines


def periodic_due(state: ServerState, now: float) -> int:
    """Start the executions of the periodic deployments that are due (each in a thread:
    the clock never waits for one)."""
    fired = 0
    rows = store(state)
    for record in rows.due(now):
        assert record.next_at is not None and record.settings.schedule is not None
        following = next_time(record.settings.schedule, now)
        if not rows.advance(record.project, record.name, record.next_at, following):
            continue
        state.deployments.background(_periodic, state, record)
        fired += 1
    return fired


def _periodic(state: ServerState, record: DeploymentRecord) -> None:
    try:
        launch = launcher(record)
        if launch is not None:
            launch(state, record)
            return
        inputs = call_inputs(record.settings.inputs, {}, lambda: state.secrets_for(record.project))
        execute(state, record, inputs, "schedule")
    except Exception as exc:
        log.warning("periodic deployment %s/%s: %s", record.project, record.name, exc)


def _resolve(state: ServerState, project: str, ref: str) -> tuple[str, str]:
    check_revision(ref)
    repo = state.config.repo_dir(project)
    commit = resolve(repo, ref)
    if commit is None:
        raise UsageError(f"{ref[:100]!r} names no branch, tag or commit of project {project!r}")
    if ref.startswith("refs/"):
        return ref, commit
    for prefix in ("refs/heads/", "refs/tags/"):
        if resolve(repo, prefix + ref) == commit:
            return prefix + ref, commit
    return ref, commit


def _check_pipeline(state: ServerState, project: str, commit: str, mode: str) -> None:
    spec = load_spec_at(state, project, commit)
    if mode == "low_latency":
        require_python(spec)


def _next_at(kind: str, settings: DeploymentSettings, now: float) -> float | None:
    if kind != "periodic" or settings.schedule is None:
        return None
    try:
        return next_time(settings.schedule, now)
    except ValueError as exc:
        raise UsageError(f"settings.schedule {settings.schedule!r} is not valid: {exc}") from None
