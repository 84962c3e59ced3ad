"""The tutorial notebook (examples/tutorial/tutorial.ipynb) executed cell by cell with
nbclient in a real kernel, against a copy of the example project in a fresh git
repository: load, split, train with two values, compare, plot. A cell that fails fails
the test with its traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor
from tests.integration.server_support import Server

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "tutorial"
SOURCE = str(Path(conveyor.__file__).parent.parent)


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "tutorial"
    shutil.copytree(EXAMPLE, project)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "tutorial"],
    ):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    return project


def _execute(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every cell in a kernel started in ``project``; what the cells printed."""
    import nbformat
    from nbclient import NotebookClient

    # the kernel and the steps it starts: this interpreter (numpy), these sources
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", SOURCE)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(project / "tutorial.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(project)}},
    )
    client.execute()
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def test_the_tutorial_runs_top_to_bottom_in_a_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path)
    printed = _execute(project, monkeypatch)
    assert "the better penalty: 0.1" in printed
    assert "metrics/eval.json  rmse" in printed
    assert "weights:" in printed
    with conveyor.Client(path=str(project)) as after:
        assert [run.status for run in after.runs()] == ["succeeded"] * 2


def test_the_tutorial_runs_against_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    project = _project(tmp_path)
    subprocess.run(
        ["git", "push", "-q", server.git_url(), "HEAD:main"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("CONVEYOR_TUTORIAL_SERVER", server.url)
    monkeypatch.setenv("CONVEYOR_TUTORIAL_PROJECT", "demo")
    monkeypatch.setenv("CONVEYOR_TOKEN", server.tokens["member"])
    printed = _execute(project, monkeypatch)
    assert "the better penalty: 0.1" in printed
    with server.api("viewer") as viewer:
        runs = viewer.get("/runs").json()["runs"]
    assert {run["status"] for run in runs} == {"succeeded"}
    assert len([run for run in runs if run["trigger"] != "push"]) == 2
