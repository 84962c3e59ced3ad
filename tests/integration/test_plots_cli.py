"""`conveyor plots` through the real CLI and matplotlib: the runs of a branch (commits in
its history only), one chart per numeric metric, a self-contained page and a PNG."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  lr: 0.1
jobs:
  train:
    steps:
      - id: fit
        run: |
          mkdir -p out
          printf '{"loss": %s, "name": "text"}' "${{ params.lr }}" > out/m.json
        metrics: [out/m.json]
"""


def _git(repo: Repo, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo.path, check=True, capture_output=True)


def test_the_metrics_of_a_branchs_runs_as_a_page_and_a_png(repo: Repo, tmp_path: Path) -> None:
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    assert repo.run("run", "-p", "lr=0.5").code == 0
    assert repo.run("run", "-p", "lr=0.25").code == 0
    _git(repo, "checkout", "-q", "-b", "other")
    repo.write("notes.txt", "elsewhere\n")
    repo.commit("other branch")
    assert repo.run("run", "-p", "lr=0.9").code == 0  # not in main's history
    out = tmp_path / "plots"
    result = repo.run("plots", "--branch", "main", "-o", str(out), "--json")
    assert result.code == 0, result.err
    found = result.json()
    assert len(found["runs"]) == 2
    assert found["metrics"] == {"out/m.json:loss": [0.5, 0.25]}  # text values are not drawn
    page = (out / "metrics.html").read_text()
    assert "<svg" in page and "<script" not in page
    assert "src=" not in page and 'href="http' not in page  # nothing fetched from elsewhere
    assert (out / "metrics.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    everything = repo.run("plots", "-o", str(tmp_path / "other"), "--json").json()
    assert len(everything["runs"]) == 3  # HEAD's branch (other) holds main's commits too


def test_an_unknown_branch_is_one_sentence(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    result = repo.run("plots", "--branch", "nope")
    assert result.code == 2
    assert "no branch 'nope' in this repository" in result.err
    assert "Traceback" not in result.err
