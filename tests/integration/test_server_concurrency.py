"""Drone's ``concurrency: {limit}`` on a real server with two workers: a second run of the
pipeline waits in the queue while the first runs, and starts once it ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = pytest.mark.integration

PIPELINE = """\
kind: pipeline
type: exec
name: deploy
concurrency:
  limit: 1
steps:
  - name: hold
    commands: [sleep 60]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=2)
    yield srv
    srv.stop()


def row(server: Server, run_id: str) -> tuple[str, int | None]:
    engine = sa.create_engine(f"sqlite:///{server.data / 'server.db'}")
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT status, concurrency FROM srv_runs WHERE id = ?", (run_id,)
            ).one()
    finally:
        engine.dispose()
    return str(found[0]), found[1]


def test_a_second_run_waits_while_the_first_runs(repo: Repo, server: Server) -> None:
    repo.write(".drone.yml", PIPELINE)
    repo.commit()
    (first,) = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    server.wait_run(first, until=("running",))
    with server.api("member") as member:
        created = member.post("/runs", json={"ref": "main"})
        assert created.status_code == 201, created.text
    second = created.json()["id"]
    # a worker claims it, reads its limit and puts it back: from then on it waits
    deadline = time.monotonic() + 60
    while row(server, second)[1] is None:
        assert time.monotonic() < deadline, "no worker looked at the second run"
        time.sleep(0.2)
    assert row(server, second) == ("queued", 1)
    assert server.wait_run(first, until=("running",))["status"] == "running"
    with server.api("member") as member:
        assert member.post(f"/runs/{first}/cancel").status_code == 200
    assert server.wait_run(first)["status"] == "cancelled"
    assert server.wait_run(second, until=("running",))["status"] == "running"
    with server.api("member") as member:
        member.post(f"/runs/{second}/cancel")
    assert server.wait_run(second)["status"] == "cancelled"
