"""Answers kept for a second (``server/db/recent.py``): an endpoint call's token and
deployment reads. A write in this process is seen by the very next read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.server.db import recent
from conveyor.server.db.database import open_database
from conveyor.server.db.recent import Recent
from conveyor.server.deployments.model import DeploymentSettings
from conveyor.server.deployments.store import DeploymentRecord, Deployments


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture(autouse=True)
def _ttl() -> Iterator[None]:
    # share_writes is process-wide: an earlier test's open_state in this process named a
    # data directory's stamp, which may be gone
    recent._stamp.clear()
    yield
    Recent.ttl = 1.0  # keep_nothing is process-wide
    recent._stamp.clear()


def _other_process_writes(stamp: Path) -> None:
    """What another process's ``forget`` does to the shared stamp (it has its own
    answers; only the file is shared)."""
    with open(stamp, "ab") as f:
        f.write(b".")


def test_a_write_by_another_process_is_seen_by_the_next_read(
    clock: list[float], tmp_path: Path
) -> None:
    recent.share_writes(tmp_path / "answers.stamp")
    kept: Recent[str] = Recent()
    assert kept.get("token", lambda: "member") == "member"
    assert kept.get("token", lambda: "unread") == "member"  # kept, no write since
    _other_process_writes(tmp_path / "answers.stamp")
    assert kept.get("token", lambda: "revoked") == "revoked"  # well within the ttl
    assert kept.get("token", lambda: "unread") == "revoked"


def test_this_process_writes_reach_the_stamp(clock: list[float], tmp_path: Path) -> None:
    stamp = tmp_path / "answers.stamp"
    recent.share_writes(stamp)
    before = stamp.stat().st_size
    Recent[int]().forget()
    assert stamp.stat().st_size == before + 1
    assert stamp.stat().st_mode & 0o777 == 0o600


def test_a_stamp_that_grew_too_large_is_replaced_and_still_seen(
    clock: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent, "MAX_STAMP", 3)
    stamp = tmp_path / "answers.stamp"
    recent.share_writes(stamp)
    kept: Recent[str] = Recent()
    writer: Recent[str] = Recent()
    for i in range(8):  # past the size limit several times
        assert kept.get("k", lambda i=i: f"v{i}") == f"v{i}"
        writer.forget()
    assert stamp.stat().st_size <= 3
    assert not list(tmp_path.glob("answers.stamp.*"))  # no temporary file left


def test_an_unreadable_stamp_keeps_nothing(clock: list[float], tmp_path: Path) -> None:
    stamp = tmp_path / "answers.stamp"
    recent.share_writes(stamp)
    stamp.unlink()
    kept: Recent[int] = Recent()
    assert [kept.get("k", lambda i=i: i) for i in range(3)] == [0, 1, 2]


def test_an_answer_is_kept_for_the_ttl_then_read_again(clock: list[float]) -> None:
    reads: list[int] = []
    kept: Recent[int] = Recent()
    read = lambda: reads.append(1) or len(reads)  # noqa: E731
    assert kept.get("k", read) == 1
    assert kept.get("k", read) == 1
    clock[0] += 1.01
    assert kept.get("k", read) == 2
    assert len(reads) == 2


def test_forget_drops_every_answer(clock: list[float]) -> None:
    kept: Recent[str] = Recent()
    kept.get("a", lambda: "old")
    kept.forget()
    assert kept.get("a", lambda: "new") == "new"


def test_an_answer_read_across_a_write_is_not_kept(clock: list[float]) -> None:
    kept: Recent[str] = Recent()

    def read_while_written() -> str:
        kept.forget()  # a write committed while this read ran
        return "maybe old"

    assert kept.get("a", read_while_written) == "maybe old"
    assert kept.get("a", lambda: "fresh") == "fresh"


def test_keep_nothing_reads_every_time(clock: list[float]) -> None:
    recent.keep_nothing()
    kept: Recent[int] = Recent()
    assert [kept.get("k", lambda i=i: i) for i in range(3)] == [0, 1, 2]


def test_a_revoked_api_token_is_refused_at_once(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        db.accounts.add_project("demo")
        _, token = db.accounts.add_user("ann")
        db.accounts.grant("demo", "ann", "member")
        assert db.accounts.access(token, "demo")[2] == "member"
        db.accounts.grant("demo", "ann", "viewer")
        assert db.accounts.access(token, "demo")[2] == "viewer"
        db.accounts.revoke_tokens("ann")
        assert db.accounts.access(token, "demo") == (None, False, None)
    finally:
        db.close()


def test_a_deployment_change_is_read_at_once(tmp_path: Path) -> None:
    """An endpoint token rotated (or a deployment disabled) by this process: the next
    call reads the new record, not the one kept."""
    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        rows = Deployments(db.engine)
        assert rows.get("demo", "svc") is None
        db.accounts.add_project("demo")
        assert rows.insert(_record("digest-1"))
        assert rows.get("demo", "svc").token_digest == "digest-1"  # type: ignore[union-attr]
        rows.change("demo", "svc", token_digest="digest-2")
        assert rows.get("demo", "svc").token_digest == "digest-2"  # type: ignore[union-attr]
        rows.delete("demo", "svc")
        assert rows.get("demo", "svc") is None
    finally:
        db.close()


def _record(digest: str) -> DeploymentRecord:
    return DeploymentRecord(
        project="demo",
        name="svc",
        kind="endpoint",
        mode="low_latency",
        ref="main",
        follow=False,
        commit="0" * 40,
        settings=DeploymentSettings(),
        enabled=True,
        token_digest=digest,
        next_at=None,
        created_by="lead",
        created_at=0.0,
        updated_at=0.0,
    )
