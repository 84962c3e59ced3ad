"""The HTCondor executor with other releases of the ``htcondor2`` bindings, and with a
pool addressed by its settings alone (remote schedd, tokens, auth methods).

The 24.x and 25.x wheels (only ``htcondor2``) run in their own venvs under
``~/.cache/conveyor/oracles`` (``CONVEYOR_HTCONDOR<MAJOR>_PYTHON`` names another
interpreter), with Conveyor's sources on ``PYTHONPATH``; ``htcondor_driver.py`` runs
steps through the executor in both filesystem modes against the test pool, whose
daemons are 23.9 (``condor_version`` in the engine's chroot).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.htcondor import HTCondorExecutor
from tests.integration import oracles
from tests.integration.test_htcondor import _need_pool

pytestmark = pytest.mark.integration
SRC = Path(__file__).resolve().parents[2] / "src"
DRIVER = Path(__file__).with_name("htcondor_driver.py")
RELEASES = ["24.12.24", "25.14.1"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A project under /tmp (shared with the test pool), writable by the jobs' owner."""
    base = Path(tempfile.mkdtemp(prefix="conveyor-htcondor-bindings-", dir="/tmp"))
    os.chmod(base, 0o755)
    project = base / "project"
    project.mkdir()
    os.chmod(project, 0o777)
    yield project
    shutil.rmtree(base, ignore_errors=True)


def _drive(release: str, filesystem: str, project: Path) -> dict[str, Any]:
    major = release.split(".", maxsplit=1)[0]
    python = oracles.oracle_python("htcondor", release, f"CONVEYOR_HTCONDOR{major}_PYTHON")
    done = subprocess.run(
        [str(python), str(DRIVER), filesystem, str(project)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("filesystem", ["spool", "shared"])
@pytest.mark.parametrize("release", RELEASES)
def test_newer_bindings_run_steps_against_the_pool(
    release: str, filesystem: str, shared_dir: Path
) -> None:
    _need_pool()
    result = _drive(release, filesystem, shared_dir)
    assert f"CondorVersion: {release} " in result["version"]
    assert result["in_place"] == (filesystem == "shared")
    done = result["completions"]
    assert (done["ok"]["state"], done["ok"]["exit_code"]) == ("exited", 0), result["logs"]
    assert result["answer"] == "42\n"  # its input arrived, its output came back
    assert (done["fails"]["state"], done["fails"]["exit_code"]) == ("exited", 5)
    assert "to the log" in result["logs"]["fails"]
    assert done["held"]["state"] == "error"
    assert done["held"]["message"].startswith("HTCondor held the job: ")


def _schedd_name() -> str:
    import htcondor2

    ads = htcondor2.Collector().query(htcondor2.AdTypes.Schedd, projection=["Name"])
    return str(ads[0]["Name"])


def test_a_schedd_named_in_the_settings_with_a_token_and_auth_methods(
    tmp_path: Path,
) -> None:
    """What a remote submit host sets: the collector, the schedd's name, its own token
    directory and the auth methods, none of them from the client config's pool."""
    _need_pool()
    import htcondor2

    tokens = htcondor2.param["SEC_TOKEN_DIRECTORY"]
    settings = {
        "collector": os.environ.get("CONVEYOR_HTCONDOR_COLLECTOR", "127.0.0.1:9618"),
        "schedd": _schedd_name(),
        "token_dir": tokens,
        "auth_methods": "idtokens",
    }
    executor = HTCondorExecutor(settings)
    try:
        inv = Invocation(
            key="remote1/s/1",
            command="echo reached",
            env={},
            workdir=tmp_path,
            log_path=tmp_path / "s.log",
        )
        handle = executor.submit(inv)
        deadline = time.monotonic() + 180
        done = []
        while not done:
            assert time.monotonic() < deadline, "the job never completed"
            done = executor.poll([handle], 0.25)
        assert (done[0].state, done[0].exit_code) == ("exited", 0)
        assert "reached" in inv.log_path.read_text()
        assert htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] == "IDTOKENS"
    finally:
        executor.close()


def test_a_schedd_the_collector_does_not_know_is_one_clear_error(tmp_path: Path) -> None:
    _need_pool()
    executor = HTCondorExecutor({"schedd": "no-such-schedd@nowhere", "connect_timeout": 20})
    try:
        handle = executor.submit(
            Invocation(
                key="r/s/1", command="true", env={}, workdir=tmp_path, log_path=tmp_path / "l"
            )
        )
        with pytest.raises(
            ExecutorError, match="the collector knows no schedd named 'no-such-schedd@nowhere'"
        ):
            executor.poll([handle], 0.25)
    finally:
        executor.close()
