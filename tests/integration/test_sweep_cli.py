"""`conveyor run --sweep` through the real CLI: one run per combination of the command
line's lists and the pipeline's `sweep:` block, each cached on its own, a failed
combination not stopping the others, and the comparison table (text and JSON)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  lr: 0.1
  depth: {type: int, default: 3}
sweep:
  depth: [3, 5]
jobs:
  train:
    steps:
      - id: fit
        run: |
          mkdir -p out
          python3 -c "$FIT" ${{ params.lr }} ${{ params.depth }}
        env:
          FIT: |
            import json, sys
            lr, depth = float(sys.argv[1]), int(sys.argv[2])
            assert lr < 1, "lr too large"
            json.dump({"loss": round(1 - lr * depth, 3)}, open("out/m.json", "w"))
        metrics: [out/m.json]
"""


@pytest.fixture
def project(repo: Repo) -> Repo:
    repo.pipeline(PIPELINE)
    repo.commit("sweep")
    return repo


def test_one_run_per_combination_then_a_table(project: Repo) -> None:
    result = project.run("run", "--sweep", "-p", "lr=0.1,0.01")
    assert result.code == 0, result.err
    assert "sweep: run 4 of 4: depth=5 lr=0.01" in result.err
    table = [line.split() for line in result.out.splitlines() if "succeeded" in line][-4:]
    assert [row[1:] for row in table] == [
        ["succeeded", "3", "0.1", "0.7"],
        ["succeeded", "3", "0.01", "0.97"],
        ["succeeded", "5", "0.1", "0.5"],
        ["succeeded", "5", "0.01", "0.95"],
    ]


def test_each_combination_is_cached_on_its_own(project: Repo) -> None:
    assert project.run("run", "--sweep", "-p", "lr=0.1").code == 0
    again = project.run("run", "--sweep", "-p", "lr=0.1,0.2", "--json").json()
    ran = {}
    for entry in again["runs"]:
        steps = project.steps(entry["run"])
        ran[(entry["params"]["depth"], entry["params"]["lr"])] = not steps["train.fit"]["cached"]
    assert ran == {(3, 0.1): False, (5, 0.1): False, (3, 0.2): True, (5, 0.2): True}
    metrics = {(r["source"], r["key"]): r["values"] for r in again["comparison"]["metrics"]}
    assert metrics[("out/m.json", "loss")] == [0.7, 0.4, 0.5, 0.0]


def test_a_failed_combination_fails_the_sweep_but_not_the_others(project: Repo) -> None:
    result = project.run("run", "--sweep", "-p", "lr=2,0.1", "-p", "depth=3", "--json")
    assert result.code == 1
    runs = result.json()["runs"]
    assert [(r["params"]["lr"], r["status"]) for r in runs] == [(2.0, "failed"), (0.1, "succeeded")]


def test_a_sweep_of_an_undeclared_parameter_is_refused(project: Repo) -> None:
    project.pipeline(PIPELINE.replace("sweep:\n  depth", "sweep:\n  width"))
    result = project.run("run", "--sweep")
    assert result.code == 2
    assert "sweep names width, not declared under params" in result.err
    assert "Traceback" not in result.err


def test_the_sdk_sweeps_the_same_way(project: Repo) -> None:
    import conveyor

    with conveyor.Client(path=str(project.path)) as client:
        done = client.sweep({"lr": [0.1, 0.2]}, progress=False, depth=5)
    assert [run.status for run in done["runs"]] == ["succeeded", "succeeded"]
    rows = {(r["source"], r["key"]): r["values"] for r in done["comparison"]["metrics"]}
    assert rows[("out/m.json", "loss")] == [0.5, 0.0]


def test_runs_in_parallel_in_worktrees_sharing_the_cache(project: Repo) -> None:
    (project.path / ".gitignore").write_text("out/\n.conveyor/\n")
    project.commit("ignore outputs")
    result = project.run("run", "--sweep", "-p", "lr=0.1,0.2", "-j", "4", "--json")
    assert result.code == 0, result.err
    runs = result.json()["runs"]
    assert [r["status"] for r in runs] == ["succeeded"] * 4
    assert not (project.path / "out").exists()  # each ran in its own worktree
    again = project.run("run", "--sweep", "-p", "lr=0.1", "--json").json()  # here, in order
    assert all(project.steps(r["run"])["train.fit"]["cached"] for r in again["runs"])
    assert (project.path / "out/m.json").exists()  # a cache hit restores the workspace


def test_a_parallel_sweep_of_uncommitted_changes_is_refused(project: Repo) -> None:
    project.pipeline(PIPELINE + "\n")
    result = project.run("run", "--sweep", "-p", "lr=0.1,0.2", "-j", "2")
    assert result.code == 2
    assert "commit your changes first, or sweep with -j 1" in result.err
