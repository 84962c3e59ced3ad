"""Artifacts in an object store, against the S3 endpoint of scripts/engines/s3.sh (moto).

Two workers on two data directories (two machines) share one database and one bucket:
a step worker A ran is served to worker B, whose local store was empty, by fetching its
outputs from S3. A damaged object is caught by its digest and not restored; an endpoint
that is down is one clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.domain.states import RunStatus
from conveyor.metadata.records import StepRunRecord
from conveyor.sdk.project import CACHE_KEY_FILE
from conveyor.server.config import ServerConfig
from conveyor.server.db.database import ServerDatabase, open_database
from conveyor.server.gitrepo import init_bare
from conveyor.server.worker import Worker
from conveyor.store.objects import ObjectStore, ObjectStoreSettings

ENDPOINT = os.environ.get("CONVEYOR_S3_ENDPOINT")
pytestmark = pytest.mark.skipif(
    not ENDPOINT, reason='no S3 endpoint (eval "$(scripts/engines/s3.sh env)")'
)
BIG = 300_000  # bytes: a file well past the store's one-read size
PIPELINE = (
    "jobs:\n  a:\n    steps:\n"
    f"      - run: od -An -tx1 -N16 /dev/urandom > out.txt && head -c {BIG} /dev/urandom > big.bin\n"
    "        outputs: [out.txt, big.bin]\n"
)


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "s3.toml"
    path.write_text(
        f'key = "{os.environ["CONVEYOR_S3_KEY_ID"]}"\n'
        f'secret = "{os.environ["CONVEYOR_S3_SECRET"]}"\n'
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ServerDatabase]:
    database = open_database(f"sqlite:///{tmp_path / 'shared.db'}")
    yield database
    database.close()


@pytest.fixture
def commit(tmp_path: Path) -> str:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    _git(work, "add", "conveyor.yml")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline")
    return _git(work, "rev-parse", "HEAD").strip()


def _machine(tmp_path: Path, name: str, db: ServerDatabase, **store: object) -> Worker:
    """A data directory with the project's repository (the commit fetched in, as a push
    would bring it) and a worker over the shared database."""
    config = ServerConfig(
        data=tmp_path / name,
        database=f"sqlite:///{tmp_path / 'shared.db'}",
        sandbox="none",
        **store,  # type: ignore[arg-type]
    )
    repo = config.repo_dir("demo")
    init_bare(repo)
    _git(repo, "fetch", "-q", str(tmp_path / "work"), "main:main")
    key = tmp_path / "a" / "projects" / "demo" / CACHE_KEY_FILE
    if key.exists():  # the machines of one server share its projects' cache keys
        shutil.copy(key, config.project_dir("demo") / CACHE_KEY_FILE)
    return Worker(config, db, name, threading.Event())


def _run(worker: Worker, db: ServerDatabase, commit: str) -> tuple[str, list[StepRunRecord]]:
    run_id = db.queue.enqueue("demo", "refs/heads/main", commit, "push", "ada")
    queued = db.queue.claim(worker.name)
    assert queued is not None and queued.id == run_id
    worker.execute(queued)
    return run_id, db.records.step_runs(run_id)


def _result(worker: Worker, path: str) -> bytes:
    repo = worker.config.repo_dir("demo")
    return subprocess.run(
        ["git", "show", f"refs/conveyor/results/main:{path}"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout


def _settings(credentials: Path) -> dict[str, object]:
    bucket = os.environ["CONVEYOR_S3_BUCKET"]
    return {
        "store_url": f"s3://{bucket}/test-{uuid.uuid4().hex}",
        "store_endpoint": ENDPOINT,
        "store_credentials": credentials,
    }


def test_two_workers_on_two_data_directories_serve_each_others_cache_hits(
    tmp_path: Path, db: ServerDatabase, commit: str, credentials: Path
) -> None:
    store = _settings(credentials)
    a = _machine(tmp_path, "a", db, **store)
    first, steps = _run(a, db, commit)
    assert db.queue.get(first).status == RunStatus.SUCCEEDED  # type: ignore[union-attr]
    assert not steps[0].cached
    made = {o.path: o.digest for o in steps[0].outputs}

    b = _machine(tmp_path, "b", db, **store)
    assert not (b.config.store_dir / "objects").exists(), "b's local store starts empty"
    second, steps = _run(b, db, commit)
    assert db.queue.get(second).status == RunStatus.SUCCEEDED  # type: ignore[union-attr]
    assert steps[0].cached and steps[0].cached_from == first
    assert _result(b, "out.txt") == _result(a, "out.txt")  # a's random bytes, not a rerun
    big = b.config.open_store().local_path(made["big.bin"])
    assert big is not None and big.stat().st_size == BIG
    assert big.read_bytes() == a.config.open_store().path_of(made["big.bin"]).read_bytes()


def test_a_damaged_object_is_caught_by_its_digest_and_the_step_runs_again(
    tmp_path: Path, db: ServerDatabase, commit: str, credentials: Path
) -> None:
    store = _settings(credentials)
    a = _machine(tmp_path, "a", db, **store)
    _, steps = _run(a, db, commit)
    out = next(o for o in steps[0].outputs if o.path == "out.txt")
    remote = ObjectStore(
        ObjectStoreSettings(str(store["store_url"]), ENDPOINT, credentials)  # type: ignore[arg-type]
    )
    remote.fs.pipe_file(remote.key(out.digest), b"tampered\n")

    b = _machine(tmp_path, "b", db, **store)
    second, steps = _run(b, db, commit)
    assert db.queue.get(second).status == RunStatus.SUCCEEDED  # type: ignore[union-attr]
    assert not steps[0].cached, "a damaged output is never served"
    assert _result(b, "out.txt") != b"tampered\n"
    assert not b.config.store_dir.joinpath("objects", out.digest[:2], out.digest[2:]).exists()
    # b's run stored its own outputs (other random bytes); the damaged key is rewritten
    # by the next put of its bytes on b (a's bytes, as a rerun that made them would)
    good = a.config.open_store().path_of(out.digest).read_bytes()
    b.config.open_store().put_bytes(good)
    assert remote.fs.cat_file(remote.key(out.digest)) == good


def test_an_endpoint_that_is_down_is_one_clear_error(
    tmp_path: Path, db: ServerDatabase, commit: str, credentials: Path
) -> None:
    bucket = os.environ["CONVEYOR_S3_BUCKET"]
    down = "http://127.0.0.1:9"  # discard: nothing listens
    result = subprocess.run(
        [
            sys.executable, "-c", "from conveyor.cli.main import main; main()",
            "worker", "--data", str(tmp_path / "w"), "--sandbox", "none",
            "--store-url", f"s3://{bucket}/x", "--store-endpoint", down,
            "--store-credentials", str(credentials),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"the object store s3://{bucket}/x at {down} failed" in result.stderr
    assert os.environ["CONVEYOR_S3_SECRET"] not in result.stderr + result.stdout

    # a worker that loses the endpoint mid-life: the run fails, its error says why
    w = _machine(tmp_path, "a", db, store_url=f"s3://{bucket}/x", store_endpoint=down,
                 store_credentials=credentials)  # fmt: skip
    run_id, _ = _run(w, db, commit)
    queued = db.queue.get(run_id)
    assert queued is not None and queued.status == RunStatus.FAILED
    assert queued.error is not None and "\n" not in queued.error.strip()
    # a step's uploads are made together once its outputs are stored locally
    assert f"cannot upload the outputs: the object store s3://{bucket}/x at {down}" in (
        queued.error
    )
