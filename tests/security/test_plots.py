"""`conveyor plots`: metric names and parameter values are data. Markup in them is
escaped in the page (or drawn as shapes in the SVG), TeX in them is not read, and a
branch name that git would take as an option is refused."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import Repo

NAME = "$\\frac{</svg><script>alert(1)</script>"  # TeX that does not parse, and markup
PIPELINE = """\
params:
  tag: {type: str, default: x}
jobs:
  train:
    steps:
      - id: fit
        run: |
          mkdir -p out
          python3 -c 'import json,sys; json.dump({sys.argv[1]: 1.5}, open("out/m.json","w"))' "$NAME"
        env:
          NAME: 'NAME_HERE'
        metrics: [out/m.json]
"""


def test_markup_and_tex_in_names_and_values_stay_text(repo: Repo, tmp_path: Path) -> None:
    repo.pipeline(PIPELINE.replace("NAME_HERE", NAME))  # single-quoted YAML: \\ stays
    repo.commit("pipeline")
    assert repo.run("run", "-p", "tag=<img src=x onerror=alert(2)>").code == 0
    result = repo.run("plots", "-o", str(tmp_path), "--json")
    assert result.code == 0, result.err
    assert list(result.json()["metrics"]) == [f"out/m.json:{NAME}"]
    page = (tmp_path / "metrics.html").read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the parameter, escaped


def test_a_branch_that_reads_as_an_option_is_refused(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    result = repo.run("plots", "--branch=--output=/tmp/x")
    assert result.code == 2
    assert "is not a valid branch" in result.err
