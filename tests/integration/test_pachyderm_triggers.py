"""The durable Pachyderm trigger queue on real SQLite and PostgreSQL: a held trigger
(an older server's, its commit maybe not landed) is not claimed until a server starts, a
queued one is claimed by exactly one claimer, a project's triggers run one at a time and in order while another project's
run beside them, and what a crash left (held, running) is queued again."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.server.db.database import ServerDatabase, open_database
from conveyor.server.db.pachyderm_queue import COMMIT, HELD, PIPELINE, QUEUED, RUNNING

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerDatabase]:
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'server.db'}")
        yield database
        database.close()
        return
    from tests.engines import fresh_postgres_database

    with fresh_postgres_database("conveyor_pach") as url:
        database = open_database(url)
        yield database
        database.close()


def _held(db: ServerDatabase, project: str, kind: str, name: str, branch: str = "") -> str:
    """A held trigger as an older server's route wrote it ahead of its commit."""
    from conveyor.server.db import tables as t

    trigger_id = secrets.token_hex(8)
    row = {"project": project, "kind": kind, "name": name, "branch": branch}
    with db.engine.begin() as conn:
        conn.execute(
            t.pachyderm_triggers.insert().values(
                id=trigger_id, status=HELD, created_at=time.time(), **row
            )
        )
    return trigger_id


def test_a_held_trigger_waits_until_a_server_starts(db: ServerDatabase) -> None:
    queue = db.pachyderm
    held = _held(db, "alpha", COMMIT, "images", "master")
    assert queue.claim("w1", ["alpha"]) is None  # its commit may not have landed
    assert queue.release_held() == 1
    claimed = queue.claim("w1", ["alpha"])
    assert claimed is not None
    assert (claimed.id, claimed.kind, claimed.name, claimed.branch) == (
        held,
        COMMIT,
        "images",
        "master",
    )


def test_a_queued_trigger_is_not_queued_twice_until_it_runs(db: ServerDatabase) -> None:
    queue = db.pachyderm
    first = queue.enqueue("alpha", COMMIT, "images", "master")
    assert queue.enqueue("alpha", COMMIT, "images", "master") == first  # a cron tick
    assert [row["id"] for row in queue.pending("alpha")] == [first]
    assert queue.claim("w1", ["alpha"]) is not None
    later = queue.enqueue("alpha", COMMIT, "images", "master")  # the first one runs
    assert later != first and [r["id"] for r in queue.pending("alpha")] == [first, later]


def test_one_project_at_a_time_in_order_others_beside(db: ServerDatabase) -> None:
    queue = db.pachyderm
    a1 = queue.enqueue("alpha", COMMIT, "images", "master")
    a2 = queue.enqueue("alpha", PIPELINE, "edges")
    b1 = queue.enqueue("beta", COMMIT, "logs", "master")
    got = queue.claim("w1", ["alpha", "beta"])
    assert got is not None and got.id == a1
    other = queue.claim("w2", ["alpha", "beta"])
    assert other is not None and other.id == b1  # alpha's next waits for its first
    assert queue.claim("w3", ["alpha", "beta"]) is None
    assert queue.claim("w3", ["beta"]) is None  # a claimer takes only its projects
    queue.finish(a1, "w1")
    last = queue.claim("w3", ["alpha"])
    assert last is not None and last.id == a2 and last.worker == "w3"


def test_claimers_at_once_claim_each_trigger_once(db: ServerDatabase) -> None:
    queue = db.pachyderm
    projects = [f"p{i}" for i in range(6)]
    made = {queue.enqueue(p, COMMIT, "data", "master") for p in projects for _ in range(2)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while True:
            got = queue.claim(name, projects)
            if got is None:
                with lock:
                    if len(claimed) == len(made):
                        return
                time.sleep(0.01)
                continue
            running = [r for r in queue.pending(got.project) if r["status"] == RUNNING]
            assert [r["id"] for r in running] == [got.id]  # alone in its project
            with lock:
                claimed.append(got.id)
            queue.finish(got.id, name)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == sorted(made)  # each once, none lost
    assert queue.pending() == []


def test_what_a_crash_left_is_queued_again(db: ServerDatabase) -> None:
    queue = db.pachyderm
    held = _held(db, "alpha", COMMIT, "images", "master")  # an older server died mid-commit
    ran = queue.enqueue("beta", PIPELINE, "edges")
    assert queue.claim("server-1", ["beta"]) is not None
    queue.restart("server-1")  # the same claimer starting again
    assert queue.release_held() == 1
    states = {row["id"]: (row["status"], row["worker"]) for row in queue.pending()}
    assert states == {held: (QUEUED, None), ran: (QUEUED, None)}
    claimed = queue.claim("w9", ["beta"])
    assert claimed is not None and claimed.id == ran
    assert queue.recover_stale(60.0) == 0  # it beats: not stale
    queue.heartbeat([ran], "w9")
    assert queue.recover_stale(-1.0) == 1  # a claimer that stopped beating
    again = queue.claim("w10", ["beta"])
    assert again is not None and again.id == ran
    queue.finish(ran, "w9")  # the stale claimer ends at last: w10's claim stays
    assert [(r["id"], r["worker"]) for r in queue.pending("beta")] == [(ran, "w10")]
    queue.finish(ran, "w10")
    assert queue.pending("beta") == []


def _server_datasets(db: ServerDatabase, tmp_path: Path, project: str) -> Any:
    """A project's datasets as the server's routes make them: each commit queues its
    downstream jobs in its own transaction."""
    from conveyor.sdk.datasets.scoped import ScopedDatasets
    from conveyor.sdk.datasets.service import Datasets
    from conveyor.sdk.project import Project
    from conveyor.store.cas import ContentStore

    root = tmp_path / project
    local = Project(
        root, state_dir=root / "datasets", records=db.records, store=ContentStore(tmp_path / "s")
    )
    scoped = ScopedDatasets(db.records, project, db.pachyderm.on_commit(project))
    return Datasets(local, records=scoped)


def test_a_dataset_commit_and_its_trigger_land_together_or_not_at_all(
    db: ServerDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.sdk.datasets.refs import parse_ref
    from conveyor.server.db import pachyderm_queue

    datasets = _server_datasets(db, tmp_path, "alpha")
    datasets.create("images", "")
    source = tmp_path / "a.txt"
    source.write_text("alpha\n")
    first = datasets.put(parse_ref("images:/a.txt"), [str(source)], "", False)
    owed = [(r["kind"], r["name"], r["branch"], r["status"]) for r in db.pachyderm.pending()]
    assert owed == [(COMMIT, "images", "master", QUEUED)]
    claimed = db.pachyderm.claim("w1", ["alpha"])
    assert claimed is not None
    db.pachyderm.finish(claimed.id, "w1")

    # a crash between the commit's rows and its trigger's: neither is written
    def crash(*_args: object) -> None:
        raise KeyboardInterrupt("killed between the commit and its trigger")

    monkeypatch.setattr(pachyderm_queue, "queue_in", crash)
    source.write_text("beta\n")
    with pytest.raises(KeyboardInterrupt):
        datasets.put(parse_ref("images:/a.txt"), [str(source)], "", False)
    assert datasets.branches("images") == {"master": first.id}  # no commit landed
    assert db.pachyderm.pending() == []
    with pytest.raises(KeyboardInterrupt):
        datasets.branch("images", "dev", parse_ref(f"images@{first.id}"))
    assert "dev" not in datasets.branches("images") and db.pachyderm.pending() == []

    monkeypatch.undo()  # the same commit once nothing fails: both land
    second = datasets.put(parse_ref("images:/a.txt"), [str(source)], "", False)
    assert datasets.branches("images") == {"master": second.id}
    assert [(r["name"], r["status"]) for r in db.pachyderm.pending()] == [("images", QUEUED)]


def test_a_pushed_commits_ci_flow_is_queued_once(db: ServerDatabase) -> None:
    queue = db.pachyderm
    commit = "c" * 40
    assert queue.enqueue_ci("alpha", commit, "main") is not None
    assert queue.enqueue_ci("alpha", commit, "main") is None  # a webhook after the push
    claimed = queue.claim("w1", ["alpha"])
    assert claimed is not None and claimed.name == commit
    queue.finish(claimed.id, "w1")
    assert queue.enqueue_ci("alpha", commit, "main") is None  # it ran: still once
    assert queue.enqueue_ci("beta", commit, "main") is not None
    assert [(r["project"], r["kind"]) for r in queue.pending()] == [("beta", "ci")]


def test_a_project_keeps_the_newest_ci_seen_rows_only(
    db: ServerDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.server.db import pachyderm_queue
    from conveyor.server.db import tables as t

    monkeypatch.setattr(pachyderm_queue, "CI_SEEN_KEPT", 3)
    seen = t.pachyderm_ci_seen
    commits = [f"{i:040x}" for i in range(5)]
    for commit in commits:
        assert db.pachyderm.enqueue_ci("alpha", commit, "main") is not None
        with db.engine.begin() as conn:  # one second older each: an order without ties
            conn.execute(seen.update().values(queued_at=seen.c.queued_at - 1))
    assert db.pachyderm.enqueue_ci("beta", commits[0], "main") is not None
    with db.engine.connect() as conn:
        rows = {(r.project, r.commit) for r in conn.execute(seen.select())}
    assert rows == {("alpha", c) for c in commits[2:]} | {("beta", commits[0])}
    assert db.pachyderm.enqueue_ci("alpha", commits[4], "main") is None  # still seen
