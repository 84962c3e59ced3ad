"""Lineage through datasets with the real CLI, real git and a real dataset: a run's
`datasets:` checks a commit out, the run records which commit it read, and lineage walks
both ways (an artifact -> the dataset commit; a dataset commit -> the runs and steps that
read it); through a Pachyderm pipeline's output commit to its input commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap
from tests.integration.ui_support import serve_ui

pytestmark = pytest.mark.integration

PIPELINE = """\
name: counts
datasets:
  data/raw: {ref}
jobs:
  j:
    steps:
      - id: count
        run: ls data/raw | wc -l > count.txt
        inputs: [data/raw]
        outputs: [count.txt]
"""


def ok(repo: Repo, *args: str) -> str:
    result = repo.run(*args)
    assert result.code == 0, result.err
    return result.out


def put(repo: Repo, tmp_path: Path, dataset: str, name: str, text: str) -> str:
    source = tmp_path / "src" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(text)
    ok(repo, "data", "put", f"{dataset}:/{name}", str(source))
    return str(json.loads(ok(repo, "data", "inspect", dataset, "--json"))["commit"]["id"])


def lineage(repo: Repo, target: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(repo, "lineage", target, "--json"))
    return data


def run_id(repo: Repo) -> str:
    return str(json.loads(ok(repo, "runs", "--json"))[0]["id"])


def test_a_run_records_the_commit_it_read_and_lineage_goes_both_ways(
    repo: Repo, tmp_path: Path
) -> None:
    repo.pipeline(PIPELINE.format(ref="images@master"))
    repo.commit("pipeline")
    ok(repo, "data", "create", "images")
    first = put(repo, tmp_path, "images", "a.txt", "a\n")
    ok(repo, "run")
    r1 = run_id(repo)
    assert (repo.path / "data/raw/a.txt").read_text() == "a\n"
    assert (repo.path / "count.txt").read_text().strip() == "1"

    # upstream: the artifact -> the step -> the dataset commit it read
    produced = lineage(repo, "count.txt")["produced_by"][0]
    assert produced["run"] == r1
    assert [(d["dataset"], d["commit"], d["path"]) for d in produced["datasets"]] == [
        ("images", first, "data/raw")
    ]
    assert produced["datasets"][0]["inputs"] == ["data/raw/a.txt"]
    text = ok(repo, "lineage", "count.txt")
    assert f"dataset: images@{first} at data/raw" in text

    # a new commit: the next run reads it; each commit keeps its own readers
    second = put(repo, tmp_path, "images", "b.txt", "b\n")
    ok(repo, "run")
    r2 = run_id(repo)
    assert (repo.path / "count.txt").read_text().strip() == "2"
    old = lineage(repo, f"images@{first}")
    assert [(r["run"], r["ref"]) for r in old["read_by"]] == [(r1, "images@master")]
    assert old["read_by"][0]["steps"] == [{"step": "j.count", "inputs": ["data/raw/a.txt"]}]
    new = lineage(repo, "images@master:/b.txt")
    assert new["commit"]["id"] == second
    assert [r["run"] for r in new["read_by"]] == [r2]
    assert new["read_by"][0]["steps"] == [{"step": "j.count", "inputs": ["data/raw/b.txt"]}]
    assert f"read by run {r2} at data/raw" in ok(repo, "lineage", "images@master")

    # pinned to the first commit (a prefix, as a user writes it): the old files again
    repo.pipeline(PIPELINE.format(ref=f"images@{first[:8]}"))
    repo.commit("pin")
    ok(repo, "run")
    assert sorted(p.name for p in (repo.path / "data/raw").iterdir()) == ["a.txt"]
    readers = lineage(repo, f"images@{first}")["read_by"]
    assert [(r["run"], r["ref"]) for r in readers] == [
        (run_id(repo), f"images@{first[:8]}"),
        (r1, "images@master"),
    ]


def test_a_directory_of_the_user_is_never_replaced(repo: Repo, tmp_path: Path) -> None:
    repo.pipeline(PIPELINE.format(ref="images@master"))
    repo.commit("pipeline")
    ok(repo, "data", "create", "images")
    put(repo, tmp_path, "images", "a.txt", "a\n")
    (repo.path / "data/raw").mkdir(parents=True)
    (repo.path / "data/raw/mine.txt").write_text("keep\n")
    result = repo.run("run")
    assert result.code == 2, result.err
    assert "data/raw already exists and no run checked it out" in result.err
    assert "Traceback" not in result.err
    assert (repo.path / "data/raw/mine.txt").read_text() == "keep\n"
    assert json.loads(ok(repo, "runs", "--json")) == []


def test_an_unknown_dataset_is_one_sentence(repo: Repo) -> None:
    repo.pipeline(PIPELINE.format(ref="nothing@master"))
    repo.commit("pipeline")
    result = repo.run("run")
    assert result.code == 2, result.err
    assert "there is no dataset nothing" in result.err
    assert not (repo.path / "data/raw").exists()


EDGES = """\
import pathlib
for src in sorted(pathlib.Path("/pfs/images").rglob("*")):
    if src.is_file():
        (pathlib.Path("/pfs/out") / src.name).write_text(src.read_text().upper())
"""


def test_lineage_reaches_through_a_pachyderm_output_commit_to_its_inputs(
    repo: Repo, tmp_path: Path
) -> None:
    need_bwrap()
    repo.pipeline(PIPELINE.format(ref="edges@master"))
    spec = {
        "pipeline": {"name": "edges"},
        "transform": {"cmd": ["python3", "-c", EDGES]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    repo.write("edges.json", json.dumps(spec))
    repo.commit("pipeline and spec")
    ok(repo, "data", "create", "images")
    images = put(repo, tmp_path, "images", "a.txt", "a\n")
    ok(repo, "pipeline", "create", "-f", "edges.json")
    job = json.loads(ok(repo, "pipeline", "run", "edges", "--json"))
    edges = str(json.loads(ok(repo, "data", "inspect", "edges", "--json"))["commit"]["id"])
    ok(repo, "run")
    assert (repo.path / "data/raw/a.txt").read_text() == "A\n"

    up = lineage(repo, "edges@master")["upstream"]
    assert [(u["dataset"], u["commit"], u["pipeline"]) for u in up] == [("images", images, "edges")]
    assert up[0]["job"] == job["id"]
    down = lineage(repo, f"images@{images}")
    assert [(m["dataset"], m["commit"]) for m in down["made_into"]] == [("edges", edges)]
    assert [(j["job"], j["state"], j["output_commit"]) for j in down["jobs"]] == [
        (job["id"], "success", edges)
    ]
    text = ok(repo, "lineage", f"images@{images}")
    assert f"made into edges@{edges}" in text
    assert f"read by job {job['id']} of pipeline edges (success, commit {edges})" in text
    produced = lineage(repo, "count.txt")["produced_by"][0]
    assert [(d["dataset"], d["commit"]) for d in produced["datasets"]] == [("edges", edges)]


def test_the_web_pages_link_an_artifact_to_the_dataset_commit_and_back(
    repo: Repo, tmp_path: Path
) -> None:
    repo.pipeline(PIPELINE.format(ref="images@master"))
    repo.commit("pipeline")
    ok(repo, "data", "create", "images")
    commit = put(repo, tmp_path, "images", "a.txt", "a\n")
    ok(repo, "run")
    produced = lineage(repo, "count.txt")
    with serve_ui(repo.path) as ui:
        page = httpx.get(
            ui + "/lineage", params={"digest": produced["digest"], "path": "count.txt"}, timeout=30
        )
        assert page.status_code == 200, page.text
        link = f"/ui/p/{ui.rsplit('/', 1)[-1]}/datasets/images?ref={commit}"
        assert f'href="{link}" class="node commit"' in page.text
        assert f"images@{commit[:8]}" in page.text
        dataset = httpx.get(ui + "/datasets/images", params={"ref": commit}, timeout=30)
        assert dataset.status_code == 200, dataset.text
        assert f"/runs/{produced['produced_by'][0]['run']}" in dataset.text
        assert "at data/raw, as images@master" in dataset.text


def test_a_rerun_reads_the_commit_the_original_run_read(repo: Repo, tmp_path: Path) -> None:
    repo.pipeline(PIPELINE.format(ref="images@master"))
    repo.commit("pipeline")
    ok(repo, "data", "create", "images")
    first = put(repo, tmp_path, "images", "a.txt", "a\n")
    ok(repo, "run")
    original = run_id(repo)
    put(repo, tmp_path, "images", "b.txt", "b\n")  # master moves on
    result = repo.run("rerun", original)
    assert result.code == 0, result.err + result.out  # the same output: reproduced
    rerun = run_id(repo)
    assert rerun != original
    readers = lineage(repo, f"images@{first}")["read_by"]
    assert [r["run"] for r in readers] == [rerun, original]
    assert (repo.path / "count.txt").read_text().strip() == "1"  # the workspace is untouched
