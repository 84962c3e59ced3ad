"""The queue's ``concurrency``: a run whose pipeline already has ``limit`` runs running
goes back to the queue in its place, and is not claimed again until one of them ends
(real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus
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
