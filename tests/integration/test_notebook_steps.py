"""Notebook steps through the real CLI and a real kernel (papermill, ipykernel, nbconvert):
parameters injected with their types, the executed notebook and its HTML stored as
outputs, a failing cell failing the step with that cell and its traceback in the log,
the cache keyed by code cells only, and one sentence when papermill is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.integration.conftest import Repo
from tests.integration.server_support import Server

pytestmark = pytest.mark.integration

SOURCE = str(Path(conveyor.__file__).parent.parent)  # the kernel's Python imports conveyor

PIPELINE = """\
params:
  alpha: {type: float, default: 0.5}
jobs:
  explore:
    steps:
      - id: eda
        notebook: analysis/explore.ipynb
        parameters:
          alpha: ${{ params.alpha }}
          label: run-${{ params.alpha }}
        metrics: [out/metrics.json]
"""

CELLS = [
    "alpha = 1\nlabel = 'default'",
    "import json, os\n"
    "print('alpha is', alpha, type(alpha).__name__, label)\n"
    "os.makedirs('out', exist_ok=True)\n"
    "json.dump({'score': alpha * 2}, open('out/metrics.json', 'w'))",
    "assert alpha < 5, 'alpha too big'",
]


def _notebook(cells: list[str], outputs: str = "", metadata: dict[str, Any] | None = None) -> str:
    made: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]} if i == 0 else {},
            "source": source,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": outputs}]
            if outputs
            else [],
            "execution_count": i + 1 if outputs else None,
        }
        for i, source in enumerate(cells)
    ]
    made.insert(1, {"cell_type": "markdown", "metadata": {}, "source": "# Explore"})
    document = {
        "cells": made,
        "metadata": metadata or {"kernelspec": {"name": "python3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    return json.dumps(document, indent=1)


@pytest.fixture
def project(repo: Repo) -> Repo:
    if shutil.which("python3") is None:  # pragma: no cover - part of the test setup
        pytest.fail("python3 is required")
    repo.pipeline(PIPELINE)
    repo.write("analysis/explore.ipynb", _notebook(CELLS))
    repo.commit("notebook")
    return repo


def _env() -> dict[str, str]:
    # the step's python3 is this test's interpreter, which has papermill and ipykernel
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"PATH": path, "PYTHONPATH": SOURCE}


def test_a_notebook_runs_with_typed_parameters_and_stores_both_renderings(project: Repo) -> None:
    result = project.run("run", "-p", "alpha=0.25", env=_env())
    assert result.code == 0, result.out + result.err
    step = project.steps()["explore.eda"]
    assert {o["path"] for o in step["outputs"]} >= {
        "results/explore/eda.ipynb",
        "results/explore/eda.html",
        "out/metrics.json",
    }
    log = project.run("logs", "latest", "explore.eda", env=_env()).out
    assert "alpha is 0.25 float run-0.25" in log
    assert "WARNING" not in log and "MissingIDFieldWarning" not in log
    executed = json.loads((project.path / "results/explore/eda.ipynb").read_text())
    injected = [
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert "alpha = 0.25" in "".join(injected[0]["source"])
    page = (project.path / "results/explore/eda.html").read_text()
    assert "<html" in page and "alpha is 0.25 float run-0.25" in page
    assert 'src="http' not in page  # self-contained: no script from a CDN
    shown = project.run("metrics", "show", "--json", env=_env()).json()
    assert shown["metrics"]["out/metrics.json"] == {"score": 0.5}


def test_a_failing_cell_fails_the_step_and_the_log_shows_it(project: Repo) -> None:
    result = project.run("run", "-p", "alpha=7", env=_env())
    assert result.code == 1
    log = project.run("logs", "latest", "explore.eda", env=_env()).out
    assert "failed: AssertionError: alpha too big" in log
    assert "assert alpha < 5, 'alpha too big'" in log  # the cell's source
    assert "Traceback" in log and "\x1b[" not in log  # the traceback, without colours
    assert project.steps()["explore.eda"]["status"] == "failed"


def test_the_cache_is_keyed_by_code_cells_not_outputs_or_metadata(project: Repo) -> None:
    assert project.run("run", env=_env()).code == 0
    saved = _notebook(CELLS, outputs="stale\n", metadata={"kernelspec": {"name": "other"}})
    project.write("analysis/explore.ipynb", saved)  # as Jupyter saves it after a session
    assert project.run("run", env=_env()).code == 0
    assert project.steps()["explore.eda"]["cached"] is True
    project.write("analysis/explore.ipynb", _notebook([*CELLS[:2], "assert alpha < 6"]))
    assert project.run("run", env=_env()).code == 0
    assert project.steps()["explore.eda"]["cached"] is False
    why = project.run("why", "explore.eda", env=_env()).out
    assert "input analysis/explore.ipynb changed (cells:" in why


def test_without_papermill_the_step_fails_with_one_sentence(project: Repo, tmp_path: Path) -> None:
    bare = tmp_path / "bare"  # a Python environment with nothing installed
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    path = f"{bare / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    result = project.run("run", env={"PYTHONPATH": SOURCE, "PATH": path})
    assert result.code == 1
    log = project.run("logs", "latest", "explore.eda", env=_env()).out
    assert "conveyor: notebook steps need papermill, nbconvert, ipykernel" in log
    assert "pip install 'conveyor[notebooks]'" in log
    assert "Traceback" not in log


def test_a_notebook_step_runs_on_a_server(project: Repo, server: Server) -> None:
    from tests.integration.server_support import git, run_ids

    out = git(project.path, "push", server.git_url(), "HEAD:main").stderr
    [run_id] = run_ids(out)
    run = server.wait_run(run_id, timeout=180)
    assert run["status"] == "succeeded", run
    paths = {o["path"] for o in run["steps"][0]["outputs"]}
    assert {"results/explore/eda.ipynb", "results/explore/eda.html"} <= paths
    with server.api("viewer") as viewer:
        log = viewer.get(f"/runs/{run_id}/logs/explore.eda").text
    assert "alpha is 0.5 float run-0.5" in log
