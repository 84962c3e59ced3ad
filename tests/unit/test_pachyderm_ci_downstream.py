"""The CI flow's run step runs, after the pipelines of its spec files, every pipeline
that reads their outputs (and those reading these), in DAG order, as a dataset commit
would run them; over a real store and a real stdlib records file, the container
runtime and the jobs replaced by recorders (no build, no datum runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.metadata.lite import open_lite
from conveyor.sdk import pachyderm_ci
from conveyor.sdk.pachyderm_ci import PipelineCi, SpecFile
from conveyor.sdk.project import Project
from conveyor.store.cas import ContentStore


def spec(folder: Path, name: str, repos: list[str], image: str | None = None) -> Path:
    inputs = [{"pfs": {"repo": r, "glob": "/*", "name": r}} for r in repos]
    transform: dict[str, Any] = {"cmd": ["sh"], **({"image": image} if image else {})}
    data = {
        "pipeline": {"name": name},
        "transform": transform,
        "input": inputs[0] if len(inputs) == 1 else {"cross": inputs},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def ci(tmp_path: Path) -> PipelineCi:
    records = open_lite(tmp_path / ".conveyor" / "conveyor.db")
    project = Project(tmp_path, records=records, store=ContentStore(tmp_path / "store"))
    flow = PipelineCi(project, registry="127.0.0.1:5000")
    flow.pipelines.datasets.create("images", "")
    flow.pipelines.datasets.create("other", "")
    return flow


def test_downstream_is_in_dag_order_when_a_reader_also_reads_a_later_output(
    ci: PipelineCi, tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    pipelines = ci.pipelines
    # "a" reads images and the output of "z" (which reads images): z runs first
    for name, repos in (("z", ["images"]), ("a", ["images", "z"]), ("x", ["other"])):
        pipelines.create(spec(specs, name, repos), f"{name}.json", False, False)
    assert pipelines.downstream("images", "master") == ["z", "a"]
    assert pipelines.with_downstream(["z"]) == ["z", "a"]
    assert pipelines.with_downstream(["x"]) == ["x"]


def test_the_run_step_runs_unlisted_pipelines_downstream_after_the_listed_ones(
    ci: PipelineCi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs, repo = tmp_path / "specs", tmp_path / "repo"
    specs.mkdir()
    (repo / "image").mkdir(parents=True)
    (repo / "image" / "Dockerfile").write_text("FROM local/base\n")
    edges = spec(repo, "edges", ["images"], image="org/edges:1")
    ci.pipelines.create(edges, "edges.json", False, False)  # a flow before this one
    # on the server already, not in the flow's files: one reads edges, one reads that
    # one and edges, one reads something else
    for name, repos in (("count", ["edges"]), ("report", ["count", "edges"]), ("x", ["other"])):
        ci.pipelines.create(spec(specs, name, repos), f"{name}.json", False, False)
    monkeypatch.setattr(ci, "_runtime", lambda: ("podman",))
    monkeypatch.setattr(ci, "_build", lambda *_a: ("sha256:" + "b" * 64, False))
    monkeypatch.setattr(pachyderm_ci, "_call", lambda *_a: None)
    ran: list[tuple[str, Any]] = []

    def run(name: str, parallel: int, executor: str | None, ci: Any) -> dict[str, Any]:
        ran.append((name, ci))
        return {"id": f"job-{name}", "state": "success", "output_commit": "c", "datums": []}

    monkeypatch.setattr(ci.pipelines, "run", run)
    record = ci.run(
        [SpecFile(edges, "edges.json")],
        push=False,
        context=repo / "image",
        dockerfile=repo / "image" / "Dockerfile",
        tag="abc",
    )
    assert [name for name, _ in ran] == ["edges", "count", "report"]
    assert ran[0][1]["image"] == "127.0.0.1:5000/org/edges:abc"  # the build's provenance
    assert ran[1][1] is None and ran[2][1] is None  # they run no image of this build
    jobs = record["steps"][-1]["jobs"]
    assert [(j["pipeline"], j["downstream"]) for j in jobs] == [
        ("edges", False),
        ("count", True),
        ("report", True),
    ]
