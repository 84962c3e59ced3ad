"""The server's run queue, its stop, and its schedules: one status type with the run
records, one interrupt routine, schedules behind their repository (real SQLite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.records import EventRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import WriteBatch
from conveyor.server.config import ServerConfig
from conveyor.server.db import tables as t
from conveyor.server.db.database import ServerDatabase, open_database
from conveyor.server.db.queue import QueuedRun
from conveyor.server.worker import Worker, interrupt_stale


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ServerDatabase]:
    database = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    yield database
    database.close()


def _record(db: ServerDatabase, run_id: str, status: RunStatus) -> None:
    db.records.create_run(RunRecord(run_id, "p", status, "c" * 40, False, time.time()))


def _stopped_mid_run(
    db: ServerDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record: Callable[[str], None],
) -> str:
    """A claimed run of demo (``record`` writes its records) that a stopping worker's
    runner ends cancelled; its id."""
    run_id = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ada")
    queued = db.queue.claim("w1")
    assert queued is not None
    record(run_id)
    worker = Worker(ServerConfig(data=tmp_path), db, "w1", threading.Event())
    worker.stopping = True

    def cancelled(run: QueuedRun) -> tuple[RunStatus, str | None, str | None]:
        return RunStatus.CANCELLED, "cancelled", None

    monkeypatch.setattr(worker, "_execute", cancelled)
    worker.execute(queued)
    return run_id


def test_the_queue_speaks_run_status_and_stores_the_same_text(db: ServerDatabase) -> None:
    run_id = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ada", {"n": 3})
    queued = db.queue.get(run_id)
    assert queued is not None and queued.status is RunStatus.QUEUED
    assert queued.params == {"n": 3}  # typed, as given
    claimed = db.queue.claim("w1")
    assert claimed is not None and claimed.status is RunStatus.RUNNING
    db.queue.finish(run_id, RunStatus.SUCCEEDED)
    with db.engine.connect() as conn:
        stored = conn.execute(sa.select(t.runs.c.status)).scalar_one()
    assert type(stored) is RunStatus and stored == "succeeded"
    with db.engine.connect() as conn:  # the column's text, unchanged for old rows
        raw = conn.exec_driver_sql("SELECT status FROM srv_runs").scalar_one()
    assert raw == "succeeded"
    assert db.queue.request_cancel(run_id) is RunStatus.SUCCEEDED
    assert db.queue.request_cancel("nope") is None


def test_a_run_the_server_stops_is_interrupted_in_the_queue_and_its_record(
    db: ServerDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the runner records when cancelled
    run_id = _stopped_mid_run(
        db, tmp_path, monkeypatch, lambda r: _record(db, r, RunStatus.CANCELLED)
    )
    after = db.queue.get(run_id)
    record = db.records.get_run(run_id)
    assert after is not None and record is not None
    assert after.status == RunStatus.INTERRUPTED and "server stopped" in (after.error or "")
    assert record.status is RunStatus.INTERRUPTED and "server stopped" in (record.error or "")


def test_a_dead_workers_run_is_interrupted_by_the_shared_routine(
    db: ServerDatabase, tmp_path: Path
) -> None:
    _record(db, "r1", RunStatus.RUNNING)
    _record(db, "r2", RunStatus.SUCCEEDED)
    step = StepRunRecord("r1", "a.s", "a", StepStatus.RUNNING, started_at=time.time())
    batch = WriteBatch()
    batch.put_step_run(step)
    db.records.write(batch)
    interrupt_stale(ServerConfig(data=tmp_path), db, ["r1", "r2", "gone"])
    first, second = db.records.get_run("r1"), db.records.get_run("r2")
    assert first is not None and first.status is RunStatus.INTERRUPTED
    assert second is not None and second.status is RunStatus.SUCCEEDED  # finished: kept
    [cancelled] = db.records.step_runs("r1")
    assert cancelled.status is StepStatus.CANCELLED
    assert cancelled.error == "interrupted: the worker ended mid-run"


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """An executor ``recording`` whose every construction is recorded."""
    from conveyor.executors import registry
    from tests.unit import fakes

    monkeypatch.setitem(registry.BUILTIN, "recording", "tests.unit.fakes:RecordingExecutor")
    monkeypatch.setattr(fakes, "BUILT", [])
    return fakes.BUILT


def _demo_on_recording(db: ServerDatabase) -> None:
    """Project demo, whose lead chose the recording executor and its settings (made
    before its runs: creating a project forgets rows a deleted one of its name left)."""
    db.accounts.add_project("demo")
    chosen = {"executor": "recording", "executors": {"recording": {"pool": "the lead's"}}}
    db.accounts.update_project("demo", {"settings": chosen})


def _started_on_recording(db: ServerDatabase, run_id: str) -> None:
    """A run of project demo whose one step started on the recording executor."""
    _record(db, run_id, RunStatus.RUNNING)
    batch = WriteBatch()
    batch.put_step_run(StepRunRecord(run_id, "a.s", "a", StepStatus.RUNNING))
    data = {"executor": "recording", "backend_id": "job-7", "attempt": 1}
    batch.events.append(EventRecord(run_id, "step-started", time.time(), "a.s", data))
    db.records.write(batch)


def test_recovery_of_a_dead_workers_run_uses_the_projects_executor_settings(
    db: ServerDatabase, tmp_path: Path, recording: list[dict[str, Any]]
) -> None:
    _demo_on_recording(db)
    run_id = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ada")
    _started_on_recording(db, run_id)
    interrupt_stale(ServerConfig(data=tmp_path), db, [run_id])
    assert recording == [{"pool": "the lead's"}]
    record = db.records.get_run(run_id)
    assert record is not None and record.status is RunStatus.INTERRUPTED


def test_recovery_of_a_run_the_server_stops_uses_the_projects_executor_settings(
    db: ServerDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recording: list[dict[str, Any]],
) -> None:
    _demo_on_recording(db)
    _stopped_mid_run(db, tmp_path, monkeypatch, lambda r: _started_on_recording(db, r))
    assert recording == [{"pool": "the lead's"}]


def test_schedules_live_behind_their_repository(db: ServerDatabase) -> None:
    schedules = db.schedules
    invalid = schedules.replace_from_pipeline("demo", "refs/heads/main", ["0 3 * * *", "nope"])
    assert invalid == ["nope"]
    added = schedules.add("demo", "*/5 * * * *", "refs/heads/main")
    with pytest.raises(ValueError):
        schedules.add("demo", "every day", "refs/heads/main")
    rows = schedules.for_project("demo")
    assert sorted(r["source"] for r in rows) == ["api", "pipeline"]
    schedules.replace_from_pipeline("demo", "refs/heads/main", [])  # the API's one stays
    assert [r["id"] for r in schedules.for_project("demo")] == [added["id"]]
    [due] = schedules.due(added["next_at"])
    assert schedules.advance(due.id, due.next_at, due.next_at + 300)
    assert not schedules.advance(due.id, due.next_at, due.next_at + 300)  # taken once only
    assert schedules.delete("demo", added["id"]) and not schedules.delete("demo", added["id"])


def test_a_dead_workers_webhook_run_owes_its_forge_the_interruption(
    db: ServerDatabase, tmp_path: Path
) -> None:
    from conveyor.server.db.statuses import ForgeLink, Statuses
    from conveyor.server.forge import owe

    run_id = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "webhook:github", "ada")
    statuses = Statuses(db.engine)
    link = ForgeLink("github", "https://api.github.com", "o/r", "c" * 40, "refs/heads/main")
    owe(statuses, "demo", run_id, link, RunStatus.RUNNING, "http://s/ui/p/demo/runs/x")
    interrupt_stale(ServerConfig(data=tmp_path), db, [run_id])
    last = statuses.for_run(run_id)[-1]
    assert (last["state"], last["target_url"]) == ("error", "http://s/ui/p/demo/runs/x")
    assert last["next_at"] is not None, "owed: the sender will post it"
    assert "interrupted" in last["description"]


def test_a_projects_settings_are_a_copy_and_empty_without_a_project(db: ServerDatabase) -> None:
    assert db.accounts.settings("nobody-here") == {}
    db.accounts.add_project("demo")
    assert db.accounts.settings("demo") == {}
    db.accounts.update_project("demo", {"settings": {"pachyderm_ci": ["p.json"]}})
    read = db.accounts.settings("demo")
    read["pachyderm_ci"] = []
    assert db.accounts.settings("demo") == {"pachyderm_ci": ["p.json"]}
