"""The deployments' service functions in-process (real git, SQLite and PostgreSQL, no server):
what the Craft AI API relies on. A pipeline that deployments serve is released only by
force (which deletes them); a push moves the deployments that follow its branch unless
the new pipeline no longer fits; a due periodic deployment fires once per tick."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import UsageError
from conveyor.server.config import ServerConfig
from conveyor.server.db.database import open_database
from conveyor.server.deployments import service
from conveyor.server.deployments.errors import DeploymentConflict
from conveyor.server.deployments.model import DeploymentCreate, DeploymentSettings
from conveyor.server.keyring import Keyring
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate
from tests.integration.server_support import git, make_server

pytestmark = pytest.mark.integration
PYTHON = "jobs:\n  s:\n    steps:\n      - python: m:f\n"
SHELL = "jobs:\n  s:\n    steps:\n      - run: echo hi\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerState]:
    database = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    srv = make_server(tmp_path, database)
    config = ServerConfig(data=srv.data, database=database)
    server_state = ServerState(
        config, open_database(config.database_url), Keyring.load(config.key_path)
    )
    yield server_state
    server_state.deployments.close()
    server_state.db.close()


def _commit(state: ServerState, work: Path, pipeline: str) -> str:
    if not work.exists():
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(pipeline)
    (work / "m.py").write_text("def f():\n    return 1\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(work, "push", "-q", str(state.config.repo_dir("demo")), "main")
    return git(work, "rev-parse", "HEAD").stdout.strip()


def test_a_served_pipeline_is_released_only_by_force(state: ServerState, tmp_path: Path) -> None:
    _commit(state, tmp_path / "work", PYTHON)
    for name in ("a", "b"):
        service.create(state, "demo", "lead", DeploymentCreate(name=name))
    with pytest.raises(DeploymentConflict, match=r"deployments still serve this pipeline \(a, b\)"):
        service.release_pipeline(state, "demo", force=False)
    assert [r.name for r in service.list_all(state, "demo")] == ["a", "b"]
    assert service.release_pipeline(state, "demo", force=True) == ["a", "b"]
    assert service.list_all(state, "demo") == []
    assert service.release_pipeline(state, "demo", force=False) == []


def test_a_push_moves_following_deployments_that_still_fit(
    state: ServerState, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    first = _commit(state, work, PYTHON)
    service.create(state, "demo", "lead", DeploymentCreate(name="fast", mode="low_latency"))
    service.create(state, "demo", "lead", DeploymentCreate(name="runs"))
    service.create(state, "demo", "lead", DeploymentCreate(name="pinned", pin=True))
    second = _commit(state, work, SHELL)  # no python step: low_latency cannot serve it
    lines = service.on_push(state, "demo", [RefUpdate(first, second, "refs/heads/main")])
    commits = {r.name: r.commit for r in service.list_all(state, "demo")}
    assert commits == {"fast": first, "runs": second, "pinned": first}
    assert any("fast stays at" in line and "python" in line for line in lines)
    with pytest.raises(UsageError, match="one `python: module:function` step"):
        service.update(state, "demo", "fast", ref=second)


def test_a_due_periodic_deployment_fires_once(state: ServerState, tmp_path: Path) -> None:
    _commit(state, tmp_path / "work", SHELL)
    settings = DeploymentSettings(schedule="0 3 * * *")
    record, token = service.create(
        state, "demo", "lead", DeploymentCreate(name="nightly", kind="periodic", settings=settings)
    )
    assert token is None and record.next_at is not None
    assert service.periodic_due(state, time.time()) == 0
    later = record.next_at + 1
    assert service.periodic_due(state, later) == 1
    assert service.periodic_due(state, later) == 0  # advanced: the next firing is tomorrow
    service.set_enabled(state, "demo", "nightly", False)
    assert service.periodic_due(state, later + 2 * 86400) == 0


def test_closing_the_runtime_ends_the_wait_of_a_fired_execution(
    state: ServerState, tmp_path: Path
) -> None:
    """A fired execution waits for its run (no worker here runs it): closing the runtime,
    as a stopping server does before it closes its database, ends that wait at once, and
    the execution stays ``running`` for the next start to settle. A thread left polling
    would read a closed database (and leak its connections)."""
    _commit(state, tmp_path / "work", SHELL)
    settings = DeploymentSettings(schedule="0 3 * * *", timeout=600)
    record, _ = service.create(
        state, "demo", "lead", DeploymentCreate(name="nightly", kind="periodic", settings=settings)
    )
    assert record.next_at is not None
    assert service.periodic_due(state, record.next_at + 1) == 1
    rows = service.store(state)
    deadline = time.monotonic() + 60
    while not rows.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["deployment"] for r in rows.running()] == ["nightly"]
    assert state.deployments.background_count() == 1
    state.deployments.close()
    assert state.deployments.background_count() == 0
    assert [r["deployment"] for r in rows.running()] == ["nightly"]
