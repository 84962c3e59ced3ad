"""The queue's ``concurrency``: a run whose pipeline already has ``limit`` runs running
goes back to the queue in its place, and is not claimed again until one of them ends
(real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus
from conveyor.server.db import tables as t
from conveyor.server.db.database import ServerDatabase, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ServerDatabase]:
    database = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    yield database
    database.close()


def queue_two(db: ServerDatabase) -> tuple[str, str]:
    first = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ann")
    second = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ann")
    return first, second


def test_a_second_run_of_a_limited_pipeline_waits_for_the_first(db: ServerDatabase) -> None:
    first, second = queue_two(db)
    claimed = db.queue.claim("w1")
    assert claimed is not None and claimed.id == first
    assert db.queue.admit(first, "ci", 1)
    again = db.queue.claim("w2")
    assert again is not None and again.id == second  # its limit is not known yet
    assert not db.queue.admit(second, "ci", 1)
    back = db.queue.get(second)
    assert back is not None
    assert (back.status, back.worker, back.started_at) == (RunStatus.QUEUED, None, None)
    assert db.queue.claim("w2") is None  # known now: it waits while the first runs
    db.queue.finish(first, RunStatus.SUCCEEDED, None, None)
    later = db.queue.claim("w2")
    assert later is not None and later.id == second
    assert db.queue.admit(second, "ci", 1)


def test_other_pipelines_and_unlimited_runs_do_not_wait(db: ServerDatabase) -> None:
    first, second = queue_two(db)
    assert db.queue.claim("w1") is not None
    assert db.queue.admit(first, "ci", 1)
    assert db.queue.claim("w2") is not None
    assert db.queue.admit(second, "deploy", 1)
    third = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ann")
    assert db.queue.claim("w3") is not None
    assert db.queue.admit(third, "ci", None)


def test_a_limit_of_two_lets_two_run(db: ServerDatabase) -> None:
    first, second = queue_two(db)
    third = db.queue.enqueue("demo", "refs/heads/main", "c" * 40, "push", "ann")
    for run_id in (first, second):
        assert db.queue.claim("w") is not None
        assert db.queue.admit(run_id, "ci", 2)
    assert db.queue.claim("w") is not None
    assert not db.queue.admit(third, "ci", 2)


def test_a_limit_given_at_enqueue_holds_whatever_the_plan_says(db: ServerDatabase) -> None:
    """A Craft deployment's executions: at most ``max_parallel_executions`` run."""
    held = ("deployment:adder-ep", 2)
    runs = [
        db.queue.enqueue("demo", "refs/x", "c" * 40, "craft", "ann", limit=held) for _ in range(3)
    ]
    other = db.queue.enqueue("demo", "refs/x", "c" * 40, "craft", "ann")
    claimed = [db.queue.claim("w") for _ in range(4)]
    assert [c.id if c else None for c in claimed] == [*runs[:2], other, None]
    for run_id in (*runs[:2], other):  # the plan's pipeline and (lack of) limit
        assert db.queue.admit(run_id, "adder", None)
    assert db.queue.claim("w") is None  # the third waits while two run
    db.queue.finish(runs[0], RunStatus.SUCCEEDED, None, None)
    third = db.queue.claim("w")
    assert third is not None and third.id == runs[2]
    assert db.queue.admit(third.id, "adder", None)
    with db.engine.connect() as conn:
        rows = conn.execute(t.runs.select().where(t.runs.c.id == runs[2])).first()
    assert rows is not None and (rows.pipeline, rows.concurrency) == held


def test_an_admission_race_sends_the_extra_run_back(db: ServerDatabase) -> None:
    held = ("deployment:one", 1)
    first = db.queue.enqueue("demo", "refs/x", "c" * 40, "craft", "ann", limit=held)
    second = db.queue.enqueue("demo", "refs/x", "c" * 40, "craft", "ann", limit=held)
    assert db.queue.claim("w1") is not None
    assert db.queue.admit(first, "adder", None)
    # another worker that claimed before the first was running: admit refuses it
    with db.engine.begin() as conn:
        conn.execute(t.runs.update().where(t.runs.c.id == second).values(status="running"))
    assert not db.queue.admit(second, "adder", 5)
    back = db.queue.get(second)
    assert back is not None and back.status == RunStatus.QUEUED
