"""A run's graph with a matrix and a datum glob, as ``conveyor ui`` serves it: each
fan-out is one box with its count, coloured from its instances, and the live state the
page polls carries the fan-outs' statuses (a real project, real runs, the real command)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.ui_support import serve_ui

pytestmark = pytest.mark.integration

PIPELINE = """\
name: fanned
jobs:
  prep:
    steps:
      - id: clean
        datums: data/*.csv
        run: cp "$CONVEYOR_DATUM" "clean-$(basename "$CONVEYOR_DATUM")"
        outputs: ["clean-${{ datum.name }}"]
  train:
    needs: [prep]
    matrix:
      lr: [1, 2]
    steps:
      - id: fit
        run: echo "lr ${{ matrix.lr }}" > "fit-${{ matrix.lr }}.txt"
        outputs: ["fit-${{ matrix.lr }}.txt"]
  report:
    needs: [train]
    steps:
      - id: make
        run: echo done
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    path = tmp_path_factory.mktemp("fanout") / "project"
    (path / "data").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (path / "data" / f"{name}.csv").write_text(f"{name},1\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.invalid"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    repo = Repo(path)
    repo.pipeline(PIPELINE)
    repo.commit("three datums, a matrix of two")
    result = repo.run("run")
    assert result.code == 0, result.err
    return repo


@pytest.fixture(scope="module")
def ui(project: Repo) -> Iterator[str]:
    with serve_ui(project.path) as url:
        yield url


def test_each_fan_out_is_one_box_with_its_count(ui: str, project: Repo) -> None:
    runs = project.run("runs", "--json").json()
    run = (runs["runs"] if isinstance(runs, dict) else runs)[0]["id"]
    page = httpx.get(f"{ui}/runs/{run}", timeout=30)
    assert page.status_code == 200, page.text
    graph = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    boxes = re.findall(r'data-group="([^"]+)" data-size="(\d+)"', graph)
    assert sorted(boxes) == [("prep.clean", "3"), ("train.fit", "2")]
    assert re.search(r'class="node s-succeeded" data-group="prep.clean"', graph)
    assert "train.fit (\u00d72)" in graph and "prep.clean (\u00d73)" in graph  # the count
    assert 'data-step="report.make"' in graph  # a step of no fan-out keeps its own box
    assert "train[lr=1].fit" not in graph  # the instances are in the steps table only
    assert page.text.count("<tr data-step=") == 6
    live = httpx.get(f"{ui}/runs/{run}/live", timeout=30).json()
    assert live["groups"] == {"prep.clean": ["succeeded", 3], "train.fit": ["succeeded", 2]}


def test_a_steps_page_says_where_it_ran(ui: str, project: Repo) -> None:
    runs = project.run("runs", "--json").json()
    run = (runs["runs"] if isinstance(runs, dict) else runs)[0]["id"]
    page = httpx.get(f"{ui}/runs/{run}/steps/report.make", timeout=30)
    assert page.status_code == 200, page.text
    assert re.search(r"<dt>Ran on</dt><dd><code class=\"wrap\">local \(\d+\)</code>", page.text)
