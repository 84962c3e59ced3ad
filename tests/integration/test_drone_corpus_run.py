"""The corpus files whose commands can run offline, run (``offline: runs`` in
tests/formats/drone_corpus/README.md): each copied unchanged into a fresh repository and
run by ``conveyor run`` with image steps on the host (no registry is reachable here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "formats" / "drone_corpus"


def offline_column() -> dict[str, str]:
    """Directory -> its ``offline`` cell (``runs``, or why it is only validated)."""
    rows: dict[str, str] = {}
    for line in (CORPUS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and (CORPUS / cells[0].split(" ")[0]).is_dir():
            rows[cells[0].split(" ")[0]] = cells[4]
    return rows


RUNNABLE = sorted(name for name, cell in offline_column().items() if cell == "runs")


def test_every_corpus_file_says_whether_it_runs_offline() -> None:
    dirs = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    column = offline_column()
    assert set(column) == dirs
    assert all(column.values())
    assert RUNNABLE


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_runnable_corpus_file_runs(repo: Repo, name: str) -> None:
    (source,) = [p for p in (CORPUS / name).iterdir() if p.name.endswith(".yml")]
    shutil.copyfile(source, repo.path / source.name)
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\non_missing = "host"\n')
    repo.commit()
    result = repo.run("run", "-f", source.name)
    assert result.code == 0, result.err + result.out
    run = repo.show()
    assert run["status"] == "succeeded"
    assert run["steps"] and all(s["status"] == "succeeded" for s in run["steps"])
    if name == "docs-exec-overview":
        assert repo.run("logs", "latest", "default.greeting").out == "hello world\n"
    if name == "dotscience-pipeline-demo":  # the step writes Dotscience's task id
        assert (repo.path / "file.txt").read_text() == run["id"] + "\n"
