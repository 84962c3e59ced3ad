"""One conformance suite for every executor.

``executor_name`` runs each test against local, htcondor (both filesystem modes: the
shared one as ``htcondor-shared``, its projects under /tmp, which the test pool shares),
spark and dask. A backend whose
engine is not configured here is skipped, unless scripts/test.sh started it (it is in
CONVEYOR_ENGINES and CONVEYOR_REQUIRE_ENGINES=1): then a missing engine fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.executors.base import Executor
from conveyor.executors.registry import load_executor
from tests.engines import configured, engine_missing, need_bindings

ENGINE_ENV = {
    "htcondor": "CONDOR_CONFIG",
    "htcondor-shared": "CONDOR_CONFIG",
    "spark": "CONVEYOR_SPARK_MASTER",
    "dask": "CONVEYOR_DASK_SCHEDULER",
}
BACKENDS = ["local", "htcondor", "htcondor-shared", "spark", "dask"]


def kind(name: str) -> str:
    """The executor's registered name (a backend may be one executor in one mode)."""
    return name.split("-", maxsplit=1)[0]


def backend_settings(name: str) -> dict[str, Any]:
    if name == "htcondor-shared":
        return {"filesystem": "shared"}
    if name == "spark":
        # a loaded machine may take longer than the default 30 s to start the context
        start = float(os.environ.get("CONVEYOR_TEST_SPARK_START_TIMEOUT", "30"))
        return {
            "master": os.environ.get("CONVEYOR_SPARK_MASTER", "local[2]"),
            "start_timeout": start,
        }
    if name == "dask":
        return {"scheduler": os.environ.get("CONVEYOR_DASK_SCHEDULER", "")}
    return {}


def _require(name: str) -> None:
    variable = ENGINE_ENV.get(name)
    if variable is None:
        return
    if not configured(variable):
        message = f"{name} engine not configured (${variable} unset); start it with scripts/engines/{name}.sh up"
        engine_missing(kind(name), message)
    need_bindings(kind(name))


@pytest.fixture(params=BACKENDS)
def executor_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    _require(name)
    return name


@pytest.fixture
def make_executor(executor_name: str) -> Iterator[Callable[[], Executor]]:
    made: list[Executor] = []

    def factory() -> Executor:
        executor = load_executor(kind(executor_name), backend_settings(executor_name))
        made.append(executor)
        return executor

    yield factory
    for executor in made:
        executor.close()


@pytest.fixture
def base_dir(tmp_path: Path, executor_name: str) -> Iterator[Path]:
    """Where the test's project goes: a shared-filesystem backend's is under /tmp (the
    test pool's chroot mounts it at the same path), open to the jobs' owner."""
    if executor_name != "htcondor-shared":
        yield tmp_path
        return
    base = Path(tempfile.mkdtemp(prefix="conveyor-contract-", dir="/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def workdir(base_dir: Path) -> Path:
    """A project directory: jobs of remote executors must not rely on sharing it."""
    path = base_dir / "project"
    path.mkdir()
    os.chmod(base_dir, 0o755)
    os.chmod(path, 0o777)
    return path


@pytest.fixture
def git_project(base_dir: Path, executor_name: str) -> Path:
    path = base_dir / "repo"
    path.mkdir()
    os.chmod(path, 0o777)
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.invalid"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    state = path / ".conveyor"
    state.mkdir()
    lines = ["[project]", f'executor = "{kind(executor_name)}"']
    settings = backend_settings(executor_name)
    if settings:
        lines.append(f"[executors.{kind(executor_name)}]")
        lines += [f'{k} = "{v}"' for k, v in settings.items()]
    (state / "config.toml").write_text("\n".join(lines) + "\n")
    return path
