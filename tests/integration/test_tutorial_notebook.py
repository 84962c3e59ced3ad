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


def test_the_tutorial_runs_top_to_bottom_in_a_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    project = _project(tmp_path)
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
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "the better penalty: 0.1" in printed
    assert "metrics/eval.json  rmse" in printed
    assert "weights:" in printed
    with conveyor.Client(path=str(project)) as after:
        assert [run.status for run in after.runs()] == ["succeeded"] * 2
