"""``conveyor server gc`` on a server with an object store, against the S3 endpoint of
scripts/engines/s3.sh (moto): a blob a record reaches (a step's output, a file of an
output tree) survives, an unreferenced one older than the grace period goes (from the
bucket and from this machine's cache), a young one stays, a dry run deletes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus
from conveyor.sdk.objectgc import reachable, sweep_objects
from conveyor.server.commands_admin import open_state
from conveyor.server.config import ServerConfig
from conveyor.server.gc import references
from conveyor.server.gitrepo import init_bare
from conveyor.server.state import ServerState
from conveyor.server.worker import Worker
from conveyor.store.cached import CachedStore

ENDPOINT = os.environ.get("CONVEYOR_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(
    not ENDPOINT, reason='no S3 endpoint (eval "$(scripts/engines/s3.sh env)")'
)
PIPELINE = (
    "jobs:\n  a:\n    steps:\n"
    "      - run: mkdir -p d && echo kept > d/one.txt && echo file > out.txt\n"
    "        outputs: [out.txt, d]\n"
)
HOUR = 3600.0


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerState]:
    """A server's state with an object store (a fresh prefix of the test bucket), and one
    run of the project done by its worker: its outputs are referenced."""
    credentials = tmp_path / "s3.toml"
    credentials.write_text(
        f'key = "{os.environ["CONVEYOR_S3_KEY_ID"]}"\n'
        f'secret = "{os.environ["CONVEYOR_S3_SECRET"]}"\n'
    )
    config = ServerConfig(
        data=tmp_path / "data",
        database=f"sqlite:///{tmp_path / 'server.db'}",
        sandbox="none",
        store_url=f"s3://{os.environ['CONVEYOR_S3_BUCKET']}/gc-{uuid.uuid4().hex}",
        store_endpoint=ENDPOINT,
        store_credentials=credentials,
    )
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    _git(work, "add", "conveyor.yml")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline")
    state = open_state(config)
    init_bare(config.repo_dir("demo"))
    _git(config.repo_dir("demo"), "fetch", "-q", str(work), "main:main")
    commit = _git(work, "rev-parse", "HEAD").strip()
    run_id = state.db.queue.enqueue("demo", "refs/heads/main", commit, "push", "ada")
    queued = state.db.queue.claim("w")
    Worker(config, state.db, "w", threading.Event()).execute(queued)
    assert state.db.queue.get(run_id).status == RunStatus.SUCCEEDED
    yield state
    state.db.close()


def _store(state: ServerState) -> CachedStore:
    store = state.config.open_store()
    assert isinstance(store, CachedStore)
    return store


def _referenced(state: ServerState) -> dict[str, str]:
    """Path -> digest of the run's outputs and of the files of its output tree."""
    store = _store(state)
    found: dict[str, str] = {}
    for run in state.db.records.list_runs():
        for step in state.db.records.step_runs(run.id):
            for output in step.outputs:
                found[output.path] = output.digest
                if output.kind == "tree":
                    for entry in store.read_tree(output.digest):
                        found[f"{output.path}/{entry.path}"] = entry.digest
    return found


def test_referenced_blobs_survive_old_unreferenced_ones_go_young_ones_stay(
    server: ServerState,
) -> None:
    store = _store(server)
    referenced = _referenced(server)
    assert set(referenced) == {"out.txt", "d", "d/one.txt"}
    orphan = store.put_bytes(b"no record names me\n")
    keep = reachable(store, references(server))
    assert set(referenced.values()) <= keep and orphan not in keep

    young = sweep_objects(store, keep, grace=HOUR)  # everything was written just now
    assert young.removed == 0 and young.young == 1 and store.remote.has(orphan)

    seen: list[str] = []
    later = time.time() + 2 * HOUR  # as if the gc ran two hours from now
    dry = sweep_objects(
        store, keep, HOUR, dry_run=True, report=lambda d, _: seen.append(d), now=later
    )
    assert seen == [orphan] and dry.removed == 1 and dry.freed_bytes == len(b"no record names me\n")
    assert store.remote.has(orphan) and store.path_of(orphan).exists(), "a dry run deletes nothing"

    done = sweep_objects(store, keep, HOUR, now=later)
    assert done.removed == 1 and done.kept == len(referenced)
    assert not store.remote.has(orphan)
    assert not store.path_of(orphan).exists(), "this machine's cache loses it too"
    for digest in referenced.values():
        assert store.remote.has(digest)


def test_the_gc_command_sweeps_the_bucket(server: ServerState, tmp_path: Path) -> None:
    config = server.config
    store = _store(server)
    orphan = store.put_bytes(b"orphan\n")
    args = [
        sys.executable, "-c", "from conveyor.cli.main import main; main()", "server",
        "--data", str(config.data), "--database", str(config.database_url),
        "--store-url", str(config.store_url), "--store-endpoint", str(ENDPOINT),
        "--store-credentials", str(config.store_credentials), "gc",
    ]  # fmt: skip

    def gc(*more: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*args, *more], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    kept = json.loads(gc("--json").stdout)  # the default grace: a day
    assert kept["objects"]["removed"] == 0 and store.remote.has(orphan)
    listed = gc("--grace", "0", "--dry-run")
    assert f"would remove {orphan} (7 bytes) from {config.store_url}" in listed.stdout
    assert "listing the object store" in listed.stderr and "under 1 hour" in listed.stderr
    assert store.remote.has(orphan)
    swept = json.loads(gc("--grace", "0", "--json").stdout)
    assert swept["objects"]["removed"] == 1 and swept["objects"]["freed_bytes"] == 7
    assert not store.remote.has(orphan)
    for digest in _referenced(server).values():
        assert store.remote.has(digest)
