"""Shared-filesystem mode of the HTCondor executor: paths and outputs are data, never
submit commands or macros, and never the wrapper's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.htcondor.description import check_outputs
from conveyor.executors.htcondor.shared import shared_job_commands


def _invocation(workdir: Path, name: str, command: str) -> Invocation:
    return Invocation(
        key=f"run1/{name}/1", command=command, env={}, workdir=workdir, log_path=workdir / "l"
    )


@pytest.mark.parametrize("name", ["a\nqueue 100", "$(Owner)", "x$$(y)"])
def test_a_project_path_the_submit_language_would_read_is_refused(
    tmp_path: Path, name: str
) -> None:
    inv = _invocation(tmp_path / name, "s", "true")
    with pytest.raises(ExecutorError, match="cannot run a job in place"):
        shared_job_commands(inv, tmp_path / "j1")
    with pytest.raises(ExecutorError, match="cannot run a job in place"):
        shared_job_commands(_invocation(tmp_path, "s", "true"), tmp_path / name)


@pytest.mark.parametrize("name", [".conveyor-code", "./.conveyor-log", ".conveyor-out"])
def test_an_output_cannot_overwrite_the_wrappers_files(name: str) -> None:
    with pytest.raises(ExecutorError, match="keeps for itself"):
        check_outputs([name])
