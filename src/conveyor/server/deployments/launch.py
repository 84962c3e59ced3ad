"""How a ``low_latency`` deployment's warm workers start: the deployment's commit
exported once into the project's directory, each worker the server's Python running
``warmpool.program.PROGRAM`` in the sandbox of the project's steps (``server/sandbox.py``), with
the pipeline's ``env``."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

from conveyor.executors.sandbox import Sandbox
from conveyor.server.deployments.store import DeploymentRecord
from conveyor.server.deployments.target import require_python
from conveyor.server.sandbox import sandbox_setting
from conveyor.server.state import ServerState
from conveyor.server.triggers import load_spec_at
from conveyor.server.warmpool.pool import Launch, WarmPool, WarmWorker
from conveyor.server.warmpool.program import PROGRAM
from conveyor.spec.expressions import value_text
from conveyor.vcs.git import run_git


def build_pool(state: ServerState, record: DeploymentRecord) -> WarmPool:
    spec = load_spec_at(state, record.project, record.commit)
    target = require_python(spec)
    checkout = export(state, record)
    settings = state.db.accounts.settings(record.project)
    setting = sandbox_setting(state.config, settings, checkout)
    sandbox = Sandbox.from_setting(setting)
    command = [sys.executable, "-B", "-c", PROGRAM, target.function]
    env = {str(k): value_text(v) for k, v in spec.env.items()}
    log = checkout.parent / "workers.log"
    if sandbox is None:
        launch = Launch(command, {"PATH": os.environ.get("PATH", ""), **env}, checkout, log)
    else:
        argv = sandbox.argv(checkout, command)
        launch = Launch(argv, sandbox.environment(env), checkout, log)
    size = record.settings.pool_size
    return WarmPool(record.commit, size, lambda: WarmWorker(launch), state.deployments.spawner)


def export(state: ServerState, record: DeploymentRecord) -> Path:
    """The commit's files in ``projects/P/deployments/NAME/COMMIT`` (made once, renamed
    into place), the checkout warm workers import the function from."""
    base = state.config.project_dir(record.project) / "deployments" / record.name
    target = base / record.commit
    if target.is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    partial = base / f".{record.commit}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    repo = state.config.repo_dir(record.project)
    data = run_git(repo, "archive", "--format=tar", record.commit, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(partial, filter="data")  # no links out, no absolute paths
    try:
        partial.rename(target)
    except OSError:  # another process made it first
        shutil.rmtree(partial, ignore_errors=True)
    return target
