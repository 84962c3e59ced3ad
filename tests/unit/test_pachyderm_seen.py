"""The Pachyderm queue's record of workers asking for work (``seen``) and the count of
triggers left unattended by them (``unattended``), on a real SQLite server database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.server.db import tables as t
from conveyor.server.db.database import ServerDatabase, open_database
from conveyor.server.db.pachyderm_queue import COMMIT, PIPELINE


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ServerDatabase]:
    database = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    yield database
    database.close()


def _age(db: ServerDatabase, seconds: float) -> None:
    """Every trigger and worker as if recorded ``seconds`` earlier."""
    with db.engine.begin() as conn:
        triggers, workers = t.pachyderm_triggers, t.pachyderm_workers
        conn.execute(triggers.update().values(created_at=triggers.c.created_at - seconds))
        conn.execute(workers.update().values(last_seen=workers.c.last_seen - seconds))


def test_queued_triggers_count_once_old_and_while_no_worker_asks(db: ServerDatabase) -> None:
    queue = db.pachyderm
    queue.enqueue("demo", PIPELINE, "copy")
    queue.enqueue("demo", COMMIT, "raw", "master")
    queue.enqueue("beta", COMMIT, "raw", "master")
    assert queue.unattended("demo", 30, 60) == 0  # just queued
    _age(db, 31)
    assert queue.unattended("demo", 30, 60) == 2
    assert queue.unattended("beta", 30, 60) == 1
    queue.seen("host:worker-0:pachyderm")
    assert queue.unattended("demo", 30, 60) == 0  # a worker asks: it will take them
    _age(db, 61)
    assert queue.unattended("demo", 30, 60) == 2  # it stopped asking
    queue.seen("host:worker-0:pachyderm")  # seen again: one row, updated
    with db.engine.connect() as conn:
        assert conn.execute(t.pachyderm_workers.select()).all()[0].last_seen >= time.time() - 5
    assert queue.unattended("demo", 30, 60) == 0


def test_running_and_held_triggers_are_not_unattended(db: ServerDatabase) -> None:
    queue = db.pachyderm
    with db.engine.begin() as conn:  # held ahead of its commit by an older server
        conn.execute(
            t.pachyderm_triggers.insert().values(
                id="h" * 16, project="demo", kind=COMMIT, name="raw", branch="master",
                status="held", created_at=time.time(),
            )
        )  # fmt: skip
    queue.enqueue("demo", PIPELINE, "copy")
    assert queue.claim("w", ["demo"]) is not None
    _age(db, 120)
    assert queue.unattended("demo", 30, 60) == 0


def test_workers_gone_for_a_week_lose_their_rows_when_a_new_one_asks(db: ServerDatabase) -> None:
    queue = db.pachyderm
    for i in range(3):
        queue.seen(f"host:worker-{i}:pachyderm")
    _age(db, 8 * 24 * 3600)
    queue.seen("host:worker-1:pachyderm")  # an old name seen again: updated, nothing dropped
    queue.seen("host:worker-9:pachyderm")  # a new one: the week-old rows go
    with db.engine.connect() as conn:
        names = sorted(r.name for r in conn.execute(t.pachyderm_workers.select()))
    assert names == ["host:worker-1:pachyderm", "host:worker-9:pachyderm"]


def test_a_commits_ci_flow_is_queued_once_even_after_it_ran(db: ServerDatabase) -> None:
    queue = db.pachyderm
    commit = "a" * 40
    first = queue.enqueue_ci("demo", commit, "main")
    assert first is not None
    assert queue.enqueue_ci("demo", commit, "main") is None  # a webhook after the push
    claimed = queue.claim("w", ["demo"])
    assert claimed is not None and (claimed.kind, claimed.name) == ("ci", commit)
    queue.finish(claimed.id, "w")
    assert queue.enqueue_ci("demo", commit, "main") is None  # ran: still seen
    assert queue.pending() == []
    assert queue.enqueue_ci("beta", commit, "main") is not None  # another project's own
