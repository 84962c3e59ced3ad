"""The public DataTorch actions whose README pipelines can run offline (``offline: runs``
in tests/formats/datatorch_actions/README.md), run unchanged by ``conveyor run`` and by
the ``datatorch`` 0.8.0 package, with the same outputs. DataTorch clones
``datatorch/NAME`` from GitHub: git's ``insteadOf`` points it at a local repository of
the corpus's files, tagged as the pipeline asks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conveyor.sdk.project import Project
from tests.integration.conftest import Repo
from tests.integration.datatorch_oracle import run_pipeline

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "formats" / "datatorch_actions"
GIT_USER = ["-c", "user.email=t@e.invalid", "-c", "user.name=T"]


def runnable() -> list[tuple[str, str]]:
    """(action, pipeline) of the README's rows whose ``offline`` cell is ``runs``."""
    rows = []
    for line in (CORPUS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[4] == "runs":
            rows += [(cells[0], p.strip()) for p in cells[3].split(",")]
    return rows


def github_of(action: str, tag: str, root: Path) -> None:
    """``https://github.com/datatorch-actions/ACTION`` as a local repository at ``tag``."""
    repo = root / "datatorch-actions" / f"{action}.git"
    shutil.copytree(CORPUS / "actions" / "datatorch" / action, repo)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", tag]):
        subprocess.run(["git", *GIT_USER, *args], cwd=repo, check=True)
    subprocess.run(["git", "tag", tag], cwd=repo, check=True)


def conveyor_outputs(repo: Repo) -> dict[str, dict[str, Any]]:
    shown = repo.show()
    plan = repo.run("plan", "-f", "pipeline.yaml", "--json").json()
    names = {s["id"]: s["name"] for s in plan["steps"]}
    outputs: dict[str, dict[str, Any]] = {}
    for event in Project(repo.path).records.events(shown["id"]):
        if event.kind == "action-outputs" and event.step_id:
            job = event.step_id.split(".", 1)[0]
            outputs.setdefault(job, {})[names[event.step_id]] = event.data["outputs"]
    return outputs


def test_some_readme_pipelines_run_offline() -> None:
    assert runnable()


@pytest.mark.parametrize(("action", "pipeline"), runnable())
def test_a_readme_pipeline_runs_as_datatorch_runs_it(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, pipeline: str
) -> None:
    source = CORPUS / "pipelines" / f"{pipeline}.yaml"
    text = source.read_text(encoding="utf-8")
    tag = text.split(f"datatorch/{action}@", 1)[1].split()[0]
    github_of(action, tag, tmp_path / "github")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.file://{tmp_path / 'github'}/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")

    shutil.copytree(CORPUS / "actions", repo.path / "actions")
    shutil.copyfile(source, repo.path / "pipeline.yaml")
    repo.write(".conveyor/config.toml", '[actions]\npaths = ["actions"]\n')
    repo.commit()
    oracle = run_pipeline(repo.path / "pipeline.yaml", {}, tmp_path / "dt")
    result = repo.run("run", "-f", "pipeline.yaml")
    assert result.code == 0, result.err + result.out
    for job, answer in oracle.items():
        assert "error" not in answer, answer
        assert conveyor_outputs(repo)[job] == answer["outputs"]
    if action == "add":  # the README's 5 + 5
        assert oracle["add"]["outputs"] == {"Add Two Numbers": {"sum": 10}}
