"""Records <-> table rows, shared by both repository implementations (one storage format).

A row here is a mapping of column name to value with JSON columns already decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.records import OutputRecord, RunRecord, StepRunRecord

Row = Mapping[Any, Any]  # a dict, or SQLAlchemy's RowMapping (keys may be columns)


def hex_prefix(prefix: str) -> bool:
    """Run ids are lowercase hex; any other prefix (``%``, ``_``) matches nothing."""
    return bool(prefix) and all(c in "0123456789abcdef" for c in prefix)


def run_row(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "status": str(run.status),
        "commit": run.commit,
        "dirty": run.dirty,
        "diff_digest": run.diff_digest,
        "params": run.params,
        "who": run.who,
        "host": run.host,
        "pid": run.pid,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "executor": run.executor,
        "spec_path": run.spec_path,
        "trigger": run.trigger,
        "workdir": run.workdir,
        "error": run.error,
        "number": run.number,
    }


def run_record(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        pipeline=row["pipeline"],
        status=RunStatus(row["status"]),
        commit=row["commit"],
        dirty=bool(row["dirty"]),
        created_at=row["created_at"],
        diff_digest=row["diff_digest"],
        params=row["params"],
        who=row["who"],
        host=row["host"],
        pid=row["pid"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        executor=row["executor"],
        spec_path=row["spec_path"],
        trigger=row["trigger"],
        workdir=row["workdir"],
        error=row["error"],
        number=row["number"],
    )


def step_row(r: StepRunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "step_id": r.step_id,
        "job": r.job,
        "status": str(r.status),
        "fingerprint": r.fingerprint,
        "cached": r.cached,
        "cached_from": r.cached_from,
        "exit_code": r.exit_code,
        "attempt": r.attempt,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "log_path": r.log_path,
        "command": r.command,
        "parts": r.parts,
        "outputs": [o.to_json() for o in r.outputs],
        "error": r.error,
    }


def step_record(row: Row) -> StepRunRecord:
    return StepRunRecord(
        run_id=row["run_id"],
        step_id=row["step_id"],
        job=row["job"],
        status=StepStatus(row["status"]),
        fingerprint=row["fingerprint"],
        cached=bool(row["cached"]),
        cached_from=row["cached_from"],
        exit_code=row["exit_code"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        log_path=row["log_path"],
        command=row["command"],
        parts=row["parts"],
        error=row["error"],
        outputs=[output(o) for o in row["outputs"]],
    )


def produced(records: list[StepRunRecord]) -> list[dict[str, Any]]:
    """Lineage rows: outputs of steps that ran here (a cache hit points at its producer)."""
    return [
        {"run_id": r.run_id, "step_id": r.step_id, **o.to_json()}
        for r in records
        if r.status == StepStatus.SUCCEEDED and not r.cached
        for o in r.outputs
    ]


def output(data: Mapping[str, Any]) -> OutputRecord:
    return OutputRecord(data["path"], data["digest"], data.get("kind", "file"), data.get("size", 0))


def output_row(row: Row) -> OutputRecord:
    return OutputRecord(row["path"], row["digest"], row["kind"], row["size"])
